"""LoRA's low-rank half with its input dropout as CPU kernels of our own, built on first use.

Why our own: on the CPU the adapters' dropout cost torch a random draw per element, a compare, a
masked copy of every adapted projection's input (kept for the backward) and a masked gradient,
and the rank-r products are too skinny for MKL to reach the matmul peak; together ~15% of a LoRA
step of the issue-20 work (profiled). No library fuses them on the CPU (Liger and unsloth are
GPU kernels). `lora_cpu_kernel.c` reads the input once in the forward, draws the mask from a
counter-based hash (seeded from torch's generator, so runs are reproducible under a seed and a
resumed run draws what the uninterrupted one drew), keeps one bit per element instead of a
masked fp32 copy, and computes the backward from the input and those bits.

The C file is built on first use by `swift_core.native_build` (the system's compiler, cached in
`$SWIFT_CACHE/kernels/`). Where there is no compiler, the build fails or `SWIFT_CPU_KERNELS=0` is
set, `load()` returns None and the fused LoRA layer keeps its torch path (same formula, torch's
random draws).
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

import torch

from swift_core import native_build

SOURCE = Path(__file__).with_name("lora_cpu_kernel.c")
ABI = 1
LANES = 65536  # the mask's resolution: p rounded to 1/65,536


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, u64, u32, f32, i32 = (
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_uint64,
        ctypes.c_uint32,
        ctypes.c_float,
        ctypes.c_int,
    )
    lib.swift_lora_kernel_abi.restype = ctypes.c_int
    lib.swift_lora_down.argtypes = [p, p, p, p, i64, i64, i64, u64, u32, f32, i32]
    lib.swift_lora_grad_a.argtypes = [p, p, p, p, i64, i64, i64, i32]
    lib.swift_lora_grad_x_add.argtypes = [p, p, p, p, i64, i64, i64, i32]
    lib.swift_lora_unpack_keep.argtypes = [p, p, i64, i64]
    for name in ("swift_lora_down", "swift_lora_grad_a", "swift_lora_grad_x_add", "swift_lora_unpack_keep"):
        getattr(lib, name).restype = None
    return lib


@functools.cache
def load() -> ctypes.CDLL | None:
    """The built kernels, or None where they cannot be had (the caller keeps its torch path)."""
    lib = native_build.load_library(SOURCE)
    if lib is None:
        return None
    lib = _bind(lib)
    return lib if lib.swift_lora_kernel_abi() == ABI else None


def mask_cut(p: float) -> int:
    """The 16-bit threshold under which an element is dropped (p rounded to 1/65,536)."""
    return round(p * LANES)


def keep_scale(cut: int) -> float:
    return 1.0 / (1.0 - cut / LANES) if cut < LANES else 0.0


def draw_seed() -> int:
    """A 64-bit seed from torch's default generator: reproducible under `torch.manual_seed`.

    Signed (an int64), as it passes through an autograd Function's arguments: the profiler's
    `record_shapes` casts those to C++ types and fails on a Python int beyond int64."""
    return int(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64))


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


def down(lib: Any, x: torch.Tensor, lora_a: torch.Tensor, seed: int, cut: int, scale: float):
    """(z, bits): z = scale * (x with the mask's dropped elements zeroed) @ lora_a.T; x (T x n) contiguous fp32."""
    rows, n = x.shape
    r = lora_a.shape[0]
    z = torch.empty(rows, r, dtype=x.dtype)
    bits = torch.empty(rows, (n + 7) // 8, dtype=torch.uint8)
    if rows:
        lib.swift_lora_down(
            _ptr(x),
            _ptr(lora_a),
            _ptr(z),
            _ptr(bits),
            rows,
            n,
            r,
            seed & (2**64 - 1),
            cut,
            scale,
            torch.get_num_threads(),
        )
    return z, bits


def grad_a(lib: Any, gz: torch.Tensor, x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """gz.T @ (x masked by bits): the gradient of lora_A (r x n)."""
    rows, n = x.shape
    r = gz.shape[1]
    out = torch.empty(r, n, dtype=x.dtype)
    lib.swift_lora_grad_a(_ptr(gz), _ptr(x), _ptr(bits), _ptr(out), rows, n, r, torch.get_num_threads())
    return out


def grad_x_add_(
    lib: Any, gx: torch.Tensor, gz: torch.Tensor, lora_a: torch.Tensor, bits: torch.Tensor
) -> None:
    """gx += (gz @ lora_a) masked by bits, in place."""
    rows, n = gx.shape
    if rows:
        lib.swift_lora_grad_x_add(
            _ptr(gz), _ptr(lora_a), _ptr(bits), _ptr(gx), rows, n, gz.shape[1], torch.get_num_threads()
        )


def keep_mask(lib: Any, bits: torch.Tensor, n: int) -> torch.Tensor:
    """The mask the bits hold, as bool (True = kept), (T x n): for tests and references."""
    out = torch.empty(bits.shape[0], n, dtype=torch.uint8)
    lib.swift_lora_unpack_keep(_ptr(bits), _ptr(out), bits.shape[0], n)
    return out.bool()
