"""`swift sft` and `swift pt`."""

from __future__ import annotations

from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.train_args import TrainArguments


def launch(args: TrainArguments) -> None:
    """Check the strategy flags against the planned processes, then (N > 1) become torchrun.

    Checked here, before any process starts or torch loads: `--deepspeed zero3 --fsdp auto_wrap`
    or `--deepspeed` on one process fails in a second, once, not once per rank.
    """
    from swift_core.distributed.launcher import launch_if_needed, planned_world_size
    from swift_core.plugins import get_plugin_manager
    from swift_core.strategies.selection import check_world_size, select_strategy

    manager = get_plugin_manager()
    world = planned_world_size(args)
    strategy = select_strategy(args, manager, world)
    check_world_size(strategy, world, args)  # and the strategy's own launch check (Megatron)
    if world > 1:
        from swift_core.runtimes.selection import select_runtime
        from swift_core.runtimes.support import Workload

        work = Workload(
            world_size=world, strategy=strategy.name if strategy else None, dtype=args.torch_dtype
        )
        select_runtime(args.device, manager).check(work)  # e.g. FSDP on the CPU, two processes on MPS
    launch_if_needed(args)  # torchrun runs here; the workers get the same argv


def _sft(args: TrainArguments) -> Any:
    from swift_core.train.pipeline import run_train

    launch(args)

    run_train(args, mode="sft")


def _pt(args: TrainArguments) -> Any:
    from swift_core.train.pipeline import run_train

    launch(args)

    run_train(args, mode="pt")


sft = dataclass_command("sft", TrainArguments, _sft, "Supervised fine-tuning: loss on the assistant turns.")
pt = dataclass_command(
    "pt", TrainArguments, _pt, "Pre-training / continued pre-training: loss on every token."
)
