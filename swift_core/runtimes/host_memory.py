"""How glibc keeps freed host memory: given back at once while loading, kept for reuse in training.

glibc serves a large allocation with its own mmap and unmaps it on free, but its threshold for
"large" adapts: after the first large block is freed, blocks up to that size (32 MB at most) come
from the heap instead, and a heap only shrinks from its top, so the activations of every step
leave holes the process keeps. Two policies, each where it pays:

- Lean (`release_freed_memory_promptly`, set when a runtime is configured): the threshold fixed
  at 4 MB, so every freed tensor of 4 MB or more goes back to the OS at once. Loading, converting
  and exporting weights leave no holes (issue-20 work: peak RSS 5.9 GB by default, 3.9 GB lean).
- Reuse (`keep_freed_memory_for_reuse`, for the steps of a training loop whose blocks stay under
  32 MB: padding-free or packed rows, a token budget; `swift_core.train.runtime_loop` says when):
  blocks up to 32 MB come from the heap and the heap is not trimmed, so each step reuses the
  pages the last step freed. Lean, every such tensor is fresh pages the kernel must fault in and
  zero, which in this 2-core VM cost a padding-free LoRA step 5-8% (bench/train_realistic.py, 10
  steps, one thread, same sitting: 389 -> 405-414 real tokens/s; step by step over the same
  batches 51-55 s -> 47-50 s) for 6-12% more peak RSS. Padded batches (their largest tensors
  pass 32 MB and stay fresh either way: 0-2% for +23% peak) and gradient checkpointing (+45-70%
  peak) keep the lean policy.

A user who set glibc's own `MALLOC_*` variables (`MALLOC_MMAP_THRESHOLD_=4194304` for lean
throughout) keeps them: nothing here changes anything then. Off glibc, nothing applies.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
from typing import Any

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LEAN_MMAP_BYTES = 4 << 20
REUSE_MMAP_BYTES = 32 << 20  # the largest threshold glibc's own adaptation reaches on 64-bit
REUSE_TRIM_BYTES = 1 << 30  # free() trims the heap top only past this: the next step reuses it


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _glibc() -> Any | None:
    """glibc with the prototypes used here, loaded once (`find_library` runs ldconfig); None off
    Linux or on a libc without mallopt (musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    with contextlib.suppress(AttributeError):  # glibc before 2.33 has no mallinfo2
        libc.mallinfo2.restype = _MallInfo2
    return libc


def _libc() -> Any | None:
    """glibc, where this process runs on it and the user left its MALLOC_* settings alone."""
    if any(k.startswith("MALLOC_") for k in os.environ):
        return None
    return _glibc()


def release_freed_memory_promptly() -> bool:
    """Lean: the mmap threshold fixed at 4 MB and the heap top trimmed as glibc does by default,
    plus what the heap holds free now handed back; False where it does not apply."""
    libc = _libc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, LEAN_MMAP_BYTES))
    libc.mallopt(M_TRIM_THRESHOLD, 128 << 10)  # glibc's default
    libc.malloc_trim(0)
    return ok


def keep_freed_memory_for_reuse() -> bool:
    """Reuse: blocks up to 32 MB from the heap, which keeps its freed pages; False where it does
    not apply."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, REUSE_MMAP_BYTES)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, REUSE_TRIM_BYTES)
    )


def free_heap_mb() -> float:
    """What glibc's heaps hold free for reuse (resident or not), MB; 0 off glibc (or before 2.33)."""
    libc = _glibc()
    mallinfo2 = getattr(libc, "mallinfo2", None) if libc is not None else None
    return mallinfo2().fordblks / 2**20 if mallinfo2 is not None else 0.0
