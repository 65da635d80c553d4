"""`swift infer`: interactive chat, batch inference over a dataset, or `--port` to serve."""

from __future__ import annotations

from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.infer.arguments import InferArguments


def _infer(args: InferArguments) -> Any:
    from swift_core.infer.run import run_infer

    run_infer(args)


infer = dataclass_command(
    "infer",
    InferArguments,
    _infer,
    "Chat with a model or a checkpoint in the terminal, or answer a dataset (--val_dataset).",
)
