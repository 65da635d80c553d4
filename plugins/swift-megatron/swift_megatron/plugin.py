"""Hooks of swift-megatron. Light on purpose: megatron.bridge is imported only when a run trains."""

from swift_core import hookimpl
from swift_core.descriptors import StrategyDescriptor
from swift_megatron.options import MegatronOptions


@hookimpl
def register_strategies(register):
    register(
        StrategyDescriptor(
            name="megatron",
            description="Megatron-Core tensor and pipeline parallelism through Megatron-Bridge (CUDA)",
            factory="swift_megatron.strategy:MegatronStrategy",
            options=MegatronOptions,
            activated_by=("megatron", "tensor_model_parallel_size", "pipeline_model_parallel_size"),
            aliases=("mcore", "megatron_core"),
        )
    )
