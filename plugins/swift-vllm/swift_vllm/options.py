"""The vLLM engine's own options (flags of `swift infer|deploy` while swift-vllm is installed).

Light on purpose: the plugin module imports it at start-up. ms-swift's spellings without the
`vllm_` prefix are accepted as aliases. `None` leaves vLLM's (or this plugin's CPU) default;
`--engine_kwargs` still passes any other AsyncEngineArgs field and overrides these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swift_core.config import arg
from swift_core.errors import SwiftError


@dataclass(kw_only=True)
class VllmOptions:
    vllm_gpu_memory_utilization: float | None = arg(
        None,
        help="vLLM: fraction of GPU memory for weights and KV cache",
        aliases=("gpu_memory_utilization",),
    )
    vllm_tensor_parallel_size: int | None = arg(
        None, help="vLLM: GPUs one model is sharded over", aliases=("tensor_parallel_size",)
    )
    vllm_pipeline_parallel_size: int | None = arg(
        None,
        help="vLLM: pipeline stages (groups of layers on different GPUs or nodes)",
        aliases=("pipeline_parallel_size",),
    )
    vllm_data_parallel_size: int | None = arg(
        None,
        help="vLLM: replicas of the model inside this one server (each tensor x pipeline GPUs)",
        aliases=("data_parallel_size",),
    )
    vllm_enforce_eager: bool | None = arg(
        None,
        help="vLLM: no CUDA graphs / torch.compile (default on the CPU: true)",
        aliases=("enforce_eager",),
    )
    vllm_cpu_kvcache_space: float | None = arg(
        None, help="vLLM CPU build: GiB of KV cache (VLLM_CPU_KVCACHE_SPACE; default 1)"
    )


# VllmOptions field -> AsyncEngineArgs keyword
ENGINE_ARGS = {
    "vllm_gpu_memory_utilization": "gpu_memory_utilization",
    "vllm_tensor_parallel_size": "tensor_parallel_size",
    "vllm_pipeline_parallel_size": "pipeline_parallel_size",
    "vllm_data_parallel_size": "data_parallel_size",
    "vllm_enforce_eager": "enforce_eager",
}


def engine_arguments(options: VllmOptions | None) -> dict[str, Any]:
    """The AsyncEngineArgs keywords the options set (those left at None are not passed); a
    parallel size below 1 is refused here, before vLLM starts."""
    if options is None:
        return {}
    for name in ("vllm_tensor_parallel_size", "vllm_pipeline_parallel_size", "vllm_data_parallel_size"):
        size = getattr(options, name)
        if size is not None and size < 1:
            raise SwiftError(f"--{name} must be a count of at least 1 (got {size})")
    values = {key: getattr(options, field) for field, key in ENGINE_ARGS.items()}
    return {k: v for k, v in values.items() if v is not None}
