"""The built-in strategies: DDP (the default of a multi-process run) and FSDP2 (`--fsdp`)."""

from __future__ import annotations

from swift_core.descriptors import StrategyDescriptor
from swift_core.hookspecs import hookimpl
from swift_core.strategies.ddp import DDPOptions
from swift_core.strategies.fsdp import FSDPOptions


@hookimpl
def register_strategies(register):
    register(
        StrategyDescriptor(
            name="ddp",
            factory="swift_core.strategies.ddp:DDPStrategy",
            description="torch DistributedDataParallel: a full copy per process, gradients averaged",
            default_distributed=True,
            options=DDPOptions,
        )
    )
    register(
        StrategyDescriptor(
            name="fsdp",
            factory="swift_core.strategies.fsdp:FSDPStrategy",
            description="FSDP2 (fully_shard) through accelerate: parameters, gradients, optimizer sharded",
            options=FSDPOptions,
            activated_by="fsdp",
            aliases=("fsdp2",),
        )
    )


@hookimpl
def before_train(trainer, args):
    """FSDP2 on the CPU: accelerate's engine switched on where accelerate leaves it off (a no-op
    on accelerators and for runs that did not ask for FSDP; see swift_core.strategies.fsdp_cpu)."""
    if getattr(getattr(trainer, "args", None), "fsdp_plugin_args", None) is None:
        return
    from swift_core.strategies.fsdp_cpu import enable_fsdp_on_cpu

    enable_fsdp_on_cpu(trainer)
