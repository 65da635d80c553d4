"""The ROCm runtime: AMD GPUs through a ROCm (HIP) build of torch.

torch exposes HIP devices through `torch.cuda` and the device type "cuda", so device strings and
memory calls are CUDA's; what differs is what works. The GPU's architecture (`gcnArchName`, e.g.
"gfx942" for MI300) decides flash attention: the flash-attention ROCm kernels (composable kernel
backend) target the Instinct MI200/MI300 families, not most Radeon cards.
"""

from __future__ import annotations

from swift_core.runtimes.base import HardwareRuntime, allocator_memory_stats
from swift_core.runtimes.support import Feature, RuntimeSupport

# gfx90a: MI200 series; gfx942: MI300 series; gfx950: MI350 series.
FLASH_ATTENTION_ARCHS = ("gfx90a", "gfx942", "gfx950")


class RocmRuntime(HardwareRuntime):
    name = "rocm"
    device_type = "cuda"  # torch's device type for HIP devices
    # torch's backend name on ROCm is "nccl": it runs RCCL, AMD's implementation of the NCCL API.
    dist_backend = "nccl"
    # HIP honours CUDA_VISIBLE_DEVICES too; HIP_VISIBLE_DEVICES is the ROCm spelling launchers set.
    visible_devices_env = "HIP_VISIBLE_DEVICES"

    def _hip(self) -> str | None:
        import torch

        return getattr(torch.version, "hip", None)

    def is_available(self) -> bool:
        import torch

        return self._hip() is not None and bool(torch.cuda.is_available())

    def unavailable_reason(self) -> str:
        import torch

        if self._hip() is None:
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
            return (
                f"this torch ({torch.__version__}) is a {build} build, not a ROCm one: install torch from "
                "the ROCm wheel index (README)"
            )
        return (
            f"torch.cuda.is_available() is False on this ROCm build (HIP {self._hip()}): no AMD GPU visible "
            "(check HIP_VISIBLE_DEVICES, the amdgpu driver, and access to /dev/kfd and /dev/dri: the "
            "video and render groups)"
        )

    def device_count(self) -> int:
        import torch

        return int(torch.cuda.device_count())

    def supported_dtypes(self) -> list[str]:
        import torch

        if torch.cuda.is_bf16_supported():
            return ["bfloat16", "float16", "float32"]
        return ["float16", "float32"]

    def arch(self, index: int = 0) -> str:
        """The GPU's architecture without its feature flags: "gfx942:sramecc+:xnack-" -> "gfx942"."""
        import torch

        props = torch.cuda.get_device_properties(index)
        return str(getattr(props, "gcnArchName", "") or "unknown").split(":")[0]

    def support(self) -> RuntimeSupport:
        import torch

        arch = self.arch(0)
        gpu = f"{torch.cuda.get_device_name(0)} ({arch})"
        flash = (
            Feature.yes(gpu)
            if arch in FLASH_ATTENTION_ARCHS
            else Feature.no(
                f"the flash-attention ROCm kernels target {', '.join(FLASH_ATTENTION_ARCHS)} (Instinct "
                f"MI200/MI300/MI350); this GPU is {gpu}: use sdpa"
            )
        )
        return RuntimeSupport(
            dtypes=tuple(self.supported_dtypes()),
            dtype_notes={"bfloat16": f"this GPU ({gpu}) reports no bf16 support"},
            quantized_training=Feature.yes(
                "needs a bitsandbytes build with ROCm support (0.48 experimental, 0.50 official)"
            ),
            flash_attention=flash,
            fused_optimizers=Feature.yes(),
            distributed=Feature.yes("rccl, through torch's nccl backend"),
            # LMDeploy's kernels (TurboMind) and its PyTorch backend's device list have no HIP.
            engines={
                "lmdeploy": "LMDeploy runs on CUDA GPUs and Ascend NPUs, not on ROCm: use vllm or transformers"
            },
        )

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
