"""`swift plan`."""

from __future__ import annotations

from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.plan.arguments import PlanArguments


def _plan(args: PlanArguments) -> Any:
    from swift_core.plan.report import run_plan

    run_plan(args)


plan = dataclass_command(
    "plan",
    PlanArguments,
    _plan,
    "Per-device memory of a training run for each strategy, and the cheapest change that makes it fit.",
)
