"""Hooks of swift-deepspeed. Light on purpose: deepspeed is imported only when a run uses it."""

from swift_core import hookimpl
from swift_core.descriptors import StrategyDescriptor
from swift_deepspeed.options import DeepSpeedOptions


@hookimpl
def register_strategies(register):
    register(
        StrategyDescriptor(
            name="deepspeed",
            description="DeepSpeed ZeRO-1/2/3: optimizer state, gradients and parameters sharded; CPU offload",
            factory="swift_deepspeed.strategy:DeepSpeedStrategy",
            requires=("deepspeed",),
            options=DeepSpeedOptions,
            activated_by="deepspeed",
            aliases=("zero",),
        )
    )
