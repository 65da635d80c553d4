"""The hardware runtime interface: what the pipelines need to know about an accelerator.

A runtime is a plugin (`register_runtimes`) so that CUDA, ROCm, Ascend NPU or MPS support can be
installed, or denied by policy, on its own. Pipelines ask the chosen runtime for the device,
dtype, distributed backend, trainer settings and what works on it (`support()`, see
`swift_core.runtimes.support`) instead of branching on a device name. This module imports nothing
of Swift but its errors and the support declaration: runtime plugins (and the built-in CPU
runtime, which the plugin manager loads) subclass `HardwareRuntime` without pulling in the
selection that needs the plugin manager (`swift_core.runtimes.selection`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

from swift_core.errors import SwiftError
from swift_core.runtimes.support import RuntimeSupport, Workload

DTYPE_NAMES = ("float32", "bfloat16", "float16")


def torch_dtype(name: str) -> Any:
    """The torch dtype of a `--torch_dtype` name."""
    if name not in DTYPE_NAMES:
        raise SwiftError(f"unknown dtype {name!r}; use one of {', '.join(DTYPE_NAMES)}")
    import torch

    return getattr(torch, name)


def launched_world_size() -> int:
    """Processes of this run as torchrun (or any launcher setting WORLD_SIZE) started it."""
    value = os.environ.get("WORLD_SIZE", "1") or "1"
    return int(value) if value.isdigit() else 1


def allocator_memory_stats(api: Any, index: int) -> dict[str, int]:
    """Memory of device `index` from a torch device module with a caching allocator: `torch.cuda`
    (also ROCm's) and torch-npu's `torch.npu` have the same functions, so runtimes share this."""
    stats = {
        "allocated": int(api.memory_allocated(index)),
        "reserved": int(api.memory_reserved(index)),
        "peak_allocated": int(api.max_memory_allocated(index)),
    }
    if hasattr(api, "mem_get_info"):
        free, total = api.mem_get_info(index)
        stats |= {"free": int(free), "total": int(total)}
    return stats


class HardwareRuntime(ABC):
    """What the pipelines need to know about a kind of accelerator (or the CPU)."""

    name: str = ""
    device_type: str = ""  # the torch device type: "cpu", "cuda" (also ROCm's), "npu", "mps"
    dist_backend: str = "gloo"
    # The environment variable that limits which devices a process sees (launchers set it per
    # worker); "" where there is none (the CPU, MPS).
    visible_devices_env: str = ""

    @abstractmethod
    def is_available(self) -> bool: ...

    def unavailable_reason(self) -> str:
        return f"no {self.name} device was found"

    @abstractmethod
    def device_count(self) -> int: ...

    def device_string(self, index: int = 0) -> str:
        """The torch device string of device `index` ("cuda:1", "npu:0"; the CPU has no index)."""
        return self.device_type if self.device_type == "cpu" else f"{self.device_type}:{index}"

    def device(self, index: int = 0) -> Any:
        import torch

        return torch.device(self.device_string(index))

    def visible_devices(self) -> str | None:
        """The value of `visible_devices_env` in this process (None: unset, every device visible)."""
        return os.environ.get(self.visible_devices_env) if self.visible_devices_env else None

    @abstractmethod
    def supported_dtypes(self) -> list[str]: ...

    def default_dtype(self) -> str:
        """The training dtype when the user does not ask for one."""
        return self.supported_dtypes()[0]

    def support(self) -> RuntimeSupport:
        """What works on this runtime. The default declares only the dtypes; runtimes override it."""
        return RuntimeSupport(dtypes=tuple(self.supported_dtypes()))

    def check(self, work: Workload) -> None:
        """Refuse, as one user error, everything in `work` this runtime cannot do: pipelines call
        it while checking arguments, so an unsupported combination never fails mid-run."""
        refusals = self.support().refusals(work)
        if refusals:
            raise SwiftError(f"not supported on the {self.name} runtime: {'; '.join(refusals)}")

    def memory_stats(self, index: int = 0) -> dict[str, int]:
        """Bytes on device `index`: allocated, reserved by the caching allocator, peak allocated,
        free and total where the library tells them. Empty where there is nothing to report."""
        return {}

    def empty_cache(self) -> None:  # noqa: B027 - optional: only caching allocators need it
        """Give cached, unused device memory back (between a training run and an evaluation)."""

    def configure(self) -> None:  # noqa: B027 - optional, most runtimes need nothing
        """Set process-level knobs (threads, env) before any model is built."""

    def training_loop_starts(self, memory_first: bool) -> None:  # noqa: B027 - optional
        """Called once when a training loop starts (model, data and optimizer built, before the
        first step; `swift sft` and `swift rlhf` alike). `memory_first`: peak memory matters more
        than step speed in this loop (gradient checkpointing on, or padded batches whose largest
        tensors gain nothing from reuse: `swift_core.train.runtime_loop.memory_first`)."""

    def training_loop_ends(self) -> None:  # noqa: B027 - optional
        """Called once when the loop has ended, before the final save: undo what
        `training_loop_starts` set for the steps."""

    def packed_attention(self) -> str | None:
        """The `attn_implementation` that keeps packed rows apart without a dense mask here
        (flash-attention's varlen kernel on CUDA), or None for Swift's per-row SDPA
        (`swift_core.train.packed_attention`), which works on every device."""
        return None

    def trainer_arguments(self, dtype_name: str) -> dict[str, Any]:
        """`transformers.TrainingArguments` fields this runtime decides for a training dtype.

        An accelerator trains in mixed precision: bf16/fp16 autocast over fp32 master weights.
        Where the runtime declares no fused optimizer kernels, plain AdamW replaces transformers'
        default `adamw_torch_fused`. A runtime that trains differently (the CPU: no autocast,
        `use_cpu`; the NPU: no unused-parameter search in DDP) overrides this, so the training
        pipeline never compares device names.
        """
        out: dict[str, Any] = {"bf16": dtype_name == "bfloat16", "fp16": dtype_name == "float16"}
        if not self.support().fused_optimizers.supported:
            out["optim"] = "adamw_torch"
        return out

    def describe(self) -> dict[str, Any]:
        available = self.is_available()
        out: dict[str, Any] = {
            "name": self.name,
            "device_type": self.device_type,
            "available": available,
            "devices": self.device_count() if available else 0,
            "dtypes": self.supported_dtypes() if available else [],
            "default_dtype": self.default_dtype() if available else None,
            "dist_backend": self.dist_backend,
        }
        if self.visible_devices_env:
            out["visible_devices"] = {self.visible_devices_env: self.visible_devices()}
        if available:
            out["support"] = self.support().describe()
            memory = self.memory_stats(0)
            if memory:
                out["memory"] = memory
        else:
            out["why"] = self.unavailable_reason()
        return out
