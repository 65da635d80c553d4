"""The hardware runtime interface: what the pipelines need to know about an accelerator.

A runtime is a plugin (`register_runtimes`) so that CUDA, ROCm, Ascend NPU or MPS support can be
installed, or denied by policy, on its own. Pipelines ask the chosen runtime for the device,
dtype and distributed backend instead of branching on a device name. This module imports nothing
of Swift but its errors: runtime plugins (and the built-in CPU runtime, which the plugin manager
loads) subclass `HardwareRuntime` without pulling in the selection that needs the plugin manager
(`swift_core.runtimes.selection`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from swift_core.errors import SwiftError

DTYPE_NAMES = ("float32", "bfloat16", "float16")


def torch_dtype(name: str) -> Any:
    """The torch dtype of a `--torch_dtype` name."""
    if name not in DTYPE_NAMES:
        raise SwiftError(f"unknown dtype {name!r}; use one of {', '.join(DTYPE_NAMES)}")
    import torch

    return getattr(torch, name)


class HardwareRuntime(ABC):
    """What the pipelines need to know about a kind of accelerator (or the CPU)."""

    name: str = ""
    device_type: str = ""  # the torch device type: "cpu", "cuda", "npu", "mps"
    dist_backend: str = "gloo"

    @abstractmethod
    def is_available(self) -> bool: ...

    def unavailable_reason(self) -> str:
        return f"no {self.name} device was found"

    @abstractmethod
    def device_count(self) -> int: ...

    def device(self, index: int = 0) -> Any:
        import torch

        return torch.device(self.device_type if self.device_type == "cpu" else f"{self.device_type}:{index}")

    @abstractmethod
    def supported_dtypes(self) -> list[str]: ...

    def default_dtype(self) -> str:
        """The training dtype when the user does not ask for one."""
        return self.supported_dtypes()[0]

    def configure(self) -> None:  # noqa: B027 - optional, most runtimes need nothing
        """Set process-level knobs (threads, env) before any model is built."""

    def trainer_arguments(self, dtype_name: str) -> dict[str, Any]:
        """`transformers.TrainingArguments` fields this runtime decides for a training dtype.

        An accelerator trains in mixed precision: bf16/fp16 autocast over fp32 master weights.
        A runtime that trains differently (the CPU: no autocast, `use_cpu`) overrides this, so
        the training pipeline never compares device names.
        """
        return {"bf16": dtype_name == "bfloat16", "fp16": dtype_name == "float16"}

    def describe(self) -> dict[str, Any]:
        available = self.is_available()
        return {
            "name": self.name,
            "device_type": self.device_type,
            "available": available,
            "devices": self.device_count() if available else 0,
            "dtypes": self.supported_dtypes() if available else [],
            "default_dtype": self.default_dtype() if available else None,
            "dist_backend": self.dist_backend,
            **({} if available else {"why": self.unavailable_reason()}),
        }
