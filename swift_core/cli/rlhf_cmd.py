"""`swift rlhf`."""

from __future__ import annotations

from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.rlhf_args import RLHFArguments


def _rlhf(args: RLHFArguments) -> Any:
    from swift_core.cli.train_cmd import launch
    from swift_core.plugins import get_plugin_manager

    launch(args)  # --nproc_per_node N: this process becomes torchrun, argv unchanged

    # The loss's descriptor picks the pipeline: preference data, or rollouts (online RL, GRPO).
    if get_plugin_manager().get("alignment_losses", args.rlhf_type).scores == "rollouts":
        from swift_core.rl.pipeline import run_online_rl

        run_online_rl(args)
        return
    from swift_core.align.pipeline import run_rlhf

    run_rlhf(args)


rlhf = dataclass_command(
    "rlhf",
    RLHFArguments,
    _rlhf,
    "Preference alignment (DPO, IPO, SimPO, ORPO, CPO, KTO, RM) and online RL (GRPO, DAPO, RLOO, ...): loss plugins.",
)
