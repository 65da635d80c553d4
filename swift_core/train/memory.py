"""What peak memory is made of: the part that lives through a step (weights, gradients, optimizer
state, data) and the part that only exists inside one (activations, logits, temporaries).

The process's peak RSS alone does not tell a user whether a smaller batch, gradient checkpointing
or a token budget would help; the split does. After each optimizer step the activations are
freed, so the resident size then is the lasting part, and the peak beyond the largest of those is
what the steps themselves added. Host RSS is what is measured (on an accelerator, device memory is
the runtime's `memory_stats`); it is an estimate: what glibc's heap holds free after a step counts as step memory.
"""

from __future__ import annotations

import os
import resource
from typing import Any

from transformers import TrainerCallback


def current_rss_mb() -> float | None:
    """Resident size now (Linux `/proc/self/statm`; psutil elsewhere; None if neither answers)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except Exception:  # no psutil, or the OS refusing
        return None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemorySplitCallback(TrainerCallback):
    """Records the resident size after every step; `split()` is (lasting MB, per-step MB)."""

    def __init__(self) -> None:
        self.lasting: float | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from swift_core.runtimes.host_memory import free_heap_mb

        now = current_rss_mb()
        if now is not None:
            # Freed activation pages the allocator keeps for the next step are step memory, not
            # lasting (the CPU runtime keeps them during padding-free loops: runtimes.host_memory).
            now = max(0.0, now - free_heap_mb())
            self.lasting = now if self.lasting is None else max(self.lasting, now)

    def split(self) -> tuple[float, float] | None:
        if self.lasting is None:
            return None
        return self.lasting, max(0.0, peak_rss_mb() - self.lasting)
