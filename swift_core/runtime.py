"""Hardware runtimes: the interface and `--device` selection.

A runtime is a plugin (`register_runtimes`) so that CUDA, ROCm, Ascend NPU or MPS support can be
installed, or denied by policy, on its own. Pipelines ask the chosen runtime for the device,
dtype and distributed backend instead of branching on a device name.
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


def instantiate(descriptor: Any) -> HardwareRuntime:
    factory = descriptor.load()
    runtime = factory()
    if not isinstance(runtime, HardwareRuntime):
        raise SwiftError(
            f"runtime {descriptor.name!r} from plugin {descriptor.plugin!r} is not a HardwareRuntime"
        )
    return runtime


def select_runtime(device: str = "auto", manager: Any = None) -> HardwareRuntime:
    """The runtime for `--device`: `auto` takes the available one of highest priority."""
    if manager is None:
        from swift_core.plugins import get_plugin_manager

        manager = get_plugin_manager()
    registry = manager.registry("runtimes")
    if device != "auto":
        descriptor = registry.get(device)
        runtime = instantiate(descriptor)
        if not runtime.is_available():
            raise SwiftError(
                f"--device {device}: the {descriptor.name} runtime is installed but not usable here: "
                f"{runtime.unavailable_reason()}. Use --device auto or one of: {', '.join(registry.names())}"
            )
        return runtime
    tried = []
    for descriptor in sorted(registry, key=lambda d: -d.priority):
        runtime = instantiate(descriptor)
        if runtime.is_available():
            return runtime
        tried.append(f"{descriptor.name} ({runtime.unavailable_reason()})")
    raise SwiftError(
        f"--device auto: no runtime is available. Tried: {'; '.join(tried) or 'none registered'}"
    )
