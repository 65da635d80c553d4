"""`swift sft` and `swift pt`."""

from __future__ import annotations

from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.train_args import TrainArguments


def _sft(args: TrainArguments) -> Any:
    from swift_core.train.pipeline import run_train

    run_train(args, mode="sft")


def _pt(args: TrainArguments) -> Any:
    from swift_core.train.pipeline import run_train

    run_train(args, mode="pt")


sft = dataclass_command("sft", TrainArguments, _sft, "Supervised fine-tuning: loss on the assistant turns.")
pt = dataclass_command(
    "pt", TrainArguments, _pt, "Pre-training / continued pre-training: loss on every token."
)
