"""The Apple MPS runtime: the GPU of Apple silicon through torch's Metal backend.

One device per machine, memory shared with the CPU, no torch.distributed backend for MPS tensors.
bf16 works only from macOS 14 (torch refuses it earlier: "MPS BFloat16 is only supported on MacOS
14 or newer"), so the runtime offers it only there and says why otherwise, before a model loads.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from swift_core.runtimes.base import HardwareRuntime
from swift_core.runtimes.support import Feature, RuntimeSupport

BF16_MACOS = (14, 0)


def _bitsandbytes_has_mps() -> bool:
    """Whether the installed bitsandbytes ships an MPS backend (found without importing it)."""
    spec = importlib.util.find_spec("bitsandbytes")
    if spec is None or not spec.origin:
        return False
    return (Path(spec.origin).parent / "backends" / "mps").is_dir()


class MpsRuntime(HardwareRuntime):
    name = "mps"
    device_type = "mps"
    dist_backend = "gloo"

    def is_available(self) -> bool:
        import torch

        return bool(torch.backends.mps.is_available())

    def unavailable_reason(self) -> str:
        import torch

        if sys.platform != "darwin":
            return f"MPS is Apple's Metal backend for macOS; this machine runs {sys.platform}"
        if not torch.backends.mps.is_built():
            return f"this torch ({torch.__version__}) was built without MPS"
        return "torch.backends.mps.is_available() is False: MPS needs macOS 12.3 or newer and a Metal GPU"

    def device_count(self) -> int:
        return 1

    def _bf16(self) -> bool:
        import torch

        return bool(torch.backends.mps.is_macos_or_newer(*BF16_MACOS))

    def supported_dtypes(self) -> list[str]:
        # float32 first: autocast on MPS is recent and fp16 training there loses accuracy without
        # the loss scaling CUDA has; ask for float16/bfloat16 explicitly.
        return ["float32", "float16", "bfloat16"] if self._bf16() else ["float32", "float16"]

    def support(self) -> RuntimeSupport:
        bnb = _bitsandbytes_has_mps()
        return RuntimeSupport(
            dtypes=tuple(self.supported_dtypes()),
            dtype_notes={
                "bfloat16": "MPS computes bf16 only on macOS 14 or newer; this Mac runs an older macOS"
            },
            quantized_training=Feature.yes("bitsandbytes' MPS backend")
            if bnb
            else Feature.no("the installed bitsandbytes has no MPS backend (bitsandbytes 0.50 has one)"),
            flash_attention=Feature.no("flash-attn kernels are CUDA/ROCm only: MPS uses sdpa"),
            fused_optimizers=Feature.yes(),
            distributed=Feature.no(
                "MPS is one GPU per machine and torch.distributed has no MPS backend: run one process"
            ),
            engines={
                "vllm": "vLLM has no Metal (MPS) platform: use --engine transformers, or --device cpu",
                "lmdeploy": "LMDeploy runs on CUDA GPUs and Ascend NPUs only",
            },
        )

    def memory_stats(self, index: int = 0) -> dict[str, int]:
        import torch

        stats = {
            "allocated": int(torch.mps.current_allocated_memory()),
            "reserved": int(torch.mps.driver_allocated_memory()),
        }
        if hasattr(torch.mps, "recommended_max_memory"):
            stats["total"] = int(torch.mps.recommended_max_memory())
        return stats

    def empty_cache(self) -> None:
        import torch

        torch.mps.empty_cache()
