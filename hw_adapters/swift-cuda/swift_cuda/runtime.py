"""The CUDA runtime: device discovery and dtypes through torch.cuda."""

from __future__ import annotations

from swift_core.runtimes.base import HardwareRuntime


class CudaRuntime(HardwareRuntime):
    name = "cuda"
    device_type = "cuda"
    dist_backend = "nccl"

    def is_available(self) -> bool:
        import torch

        return bool(torch.cuda.is_available())

    def unavailable_reason(self) -> str:
        import torch

        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
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

    def configure(self) -> None:
        import os

        import torch

        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
            torch.cuda.set_device(local_rank)
