"""`swift rlhf`."""

from __future__ import annotations

from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.rlhf_args import RLHFArguments


def _rlhf(args: RLHFArguments) -> Any:
    from swift_core.align.pipeline import run_rlhf

    run_rlhf(args)


rlhf = dataclass_command(
    "rlhf", RLHFArguments, _rlhf, "Preference alignment: DPO, IPO, SimPO, ORPO, CPO, KTO, ... (loss plugins)."
)
