"""The CUDA runtime: device discovery, dtypes, memory and what works, through torch.cuda.

A ROCm build of torch answers `torch.cuda` too (HIP behind the same API); this runtime declines it
(`torch.version.hip` is set) so that swift-rocm, which knows the AMD GPUs' limits, drives it.
"""

from __future__ import annotations

from swift_core.runtimes.base import HardwareRuntime, allocator_memory_stats
from swift_core.runtimes.support import Feature, RuntimeSupport

# flash-attn 2 and bf16 need Ampere (compute capability 8.0) or newer.
AMPERE = (8, 0)


class CudaRuntime(HardwareRuntime):
    name = "cuda"
    device_type = "cuda"
    dist_backend = "nccl"
    visible_devices_env = "CUDA_VISIBLE_DEVICES"

    def is_available(self) -> bool:
        import torch

        return getattr(torch.version, "hip", None) is None and bool(torch.cuda.is_available())

    def unavailable_reason(self) -> str:
        import torch

        hip = getattr(torch.version, "hip", None)
        if hip is not None:
            return f"this torch ({torch.__version__}) is a ROCm build (HIP {hip}): the rocm runtime (swift-rocm) drives it"
        if torch.version.cuda is None:
            return f"this torch ({torch.__version__}) is a CPU-only build"
        return (
            "torch.cuda.is_available() is False (no GPU visible; check CUDA_VISIBLE_DEVICES and the driver)"
        )

    def device_count(self) -> int:
        import torch

        return int(torch.cuda.device_count())

    def supported_dtypes(self) -> list[str]:
        import torch

        if torch.cuda.is_bf16_supported():
            return ["bfloat16", "float16", "float32"]
        return ["float16", "float32"]

    def _capability(self) -> tuple[int, int]:
        import torch

        return tuple(torch.cuda.get_device_capability(0))  # type: ignore[return-value]

    def support(self) -> RuntimeSupport:
        import torch

        major, minor = self._capability()
        gpu = f"{torch.cuda.get_device_name(0)} (sm_{major}{minor})"
        ampere = (major, minor) >= AMPERE
        return RuntimeSupport(
            dtypes=tuple(self.supported_dtypes()),
            dtype_notes={
                "bfloat16": f"bf16 needs compute capability 8.0 (Ampere) or newer; this GPU is {gpu}"
            },
            quantized_training=Feature.yes("bitsandbytes CUDA kernels"),
            flash_attention=Feature.yes(gpu)
            if ampere
            else Feature.no(f"flash-attn 2 needs Ampere (sm_80) or newer; this GPU is {gpu}: use sdpa"),
            fused_optimizers=Feature.yes(),
            distributed=Feature.yes("nccl"),
        )

    def packed_attention(self) -> str | None:
        """flash-attention's varlen kernel for packed rows where it is installed and the GPU can
        run it (Ampere or newer); else Swift's per-row SDPA."""
        import importlib.util

        if importlib.util.find_spec("flash_attn") is None or self._capability() < AMPERE:
            return None
        return "flash_attention_2"

    def memory_stats(self, index: int = 0) -> dict[str, int]:
        import torch

        return allocator_memory_stats(torch.cuda, index)

    def empty_cache(self) -> None:
        import torch

        torch.cuda.empty_cache()

    def configure(self) -> None:
        import os

        import torch

        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
            torch.cuda.set_device(local_rank)
