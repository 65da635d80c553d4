"""The CPU runtime: always available, fp32 by default, gloo for torch.distributed."""

from __future__ import annotations

import os
from typing import Any

from swift_core.descriptors import RuntimeDescriptor
from swift_core.hookspecs import hookimpl
from swift_core.runtimes.base import HardwareRuntime
from swift_core.runtimes.support import RuntimeSupport


class CpuRuntime(HardwareRuntime):
    name = "cpu"
    device_type = "cpu"
    dist_backend = "gloo"

    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def supported_dtypes(self) -> list[str]:
        # fp32 first: bf16 matmuls on most CPUs are emulated and slower, and fp16 is not usable
        # for training on the CPU.
        return ["float32", "bfloat16"]

    def support(self) -> RuntimeSupport:
        return RuntimeSupport(
            dtypes=tuple(self.supported_dtypes()),
            dtype_notes={"float16": "fp16 kernels for training are missing on the CPU"},
        )

    def training_loop_starts(self, memory_first: bool) -> None:
        """Steps reuse the pages the last step freed (5-8% of a padding-free step
        here), unless the pipeline says memory comes first (`runtimes.host_memory`)."""
        if not memory_first:
            from swift_core.runtimes.host_memory import keep_freed_memory_for_reuse

            keep_freed_memory_for_reuse()

    def training_loop_ends(self) -> None:
        from swift_core.runtimes.host_memory import release_freed_memory_promptly

        release_freed_memory_promptly()

    def trainer_arguments(self, dtype_name: str) -> dict[str, Any]:
        """No mixed-precision autocast on the CPU: the weights themselves are in `dtype_name`."""
        return {"use_cpu": True, "bf16": False, "fp16": False}

    def configure(self) -> None:
        """Share the cores among local workers (oversubscribed threads cut speed sharply on small
        CPUs), and give freed memory back to the OS at once while loading (`runtimes.host_memory`)."""
        import torch

        from swift_core.runtimes.host_memory import release_freed_memory_promptly

        release_freed_memory_promptly()

        # DeepSpeed (when installed) otherwise probes for GPUs and warns on every rank that it
        # fell back to its CPU accelerator.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit():
            torch.set_num_threads(int(threads))
            return
        workers = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, workers)))


@hookimpl
def register_runtimes(register):
    register(
        RuntimeDescriptor(
            name="cpu",
            description="The CPU: always available; fp32 training, gloo for distributed runs",
            factory="swift_core.builtin.runtime_cpu:CpuRuntime",
            priority=0,
        )
    )
