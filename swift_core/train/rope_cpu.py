"""Rotary position embedding in one pass forward and one backward, for fp32 training on the CPU.

Why our own: transformers applies RoPE as `q * cos + rotate_half(q) * sin`, where `rotate_half`
slices, negates and concatenates: five elementwise passes over q and over k forward, more through
autograd backward; on the issue-20 work that was ~8 ms per layer on one thread (measured), where
one pass each way costs about 1 ms. `rope_cpu.c` reads q (or k) once and writes its rotation once,
in either direction.

transformers calls the function by its module-level name (`apply_rotary_pos_emb` of the model's
modeling file) from inside its attention's forward, so the switch replaces that name in the
modeling module, once per process, with a function that takes the kernel for fp32 CPU tensors and
calls the original otherwise; only after both agreed on a probe, so a family with another
rotation (interleaved pairs, partial rotary dimensions, multimodal sections) keeps its own. Where
the kernel cannot be built (no compiler, `SWIFT_CPU_KERNELS=0`) nothing is switched.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from swift_core import native_build

SOURCE = Path(__file__).with_name("rope_cpu.c")
ABI = 1
NAME = "apply_rotary_pos_emb"
ORIGINAL = "__swift_original__"


@functools.cache
def load() -> ctypes.CDLL | None:
    lib = native_build.load_library(SOURCE)
    if lib is None:
        return None
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.swift_rope_abi.restype = ctypes.c_int
    shape, strides, cos_strides = [i64] * 4, [i64] * 3, [i64] * 2
    lib.swift_rope.argtypes = [p, *shape, *strides, p, p, *cos_strides, p, *strides, i32, i32]
    lib.swift_rope.restype = None
    return lib if lib.swift_rope_abi() == ABI else None


def _rotate(lib: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, backward: bool) -> torch.Tensor:
    out = torch.empty_like(x)  # x's own layout (transformers' q is a transposed view of q_proj's output)
    b, h, t, d = x.shape
    if x.numel():
        lib.swift_rope(
            x.data_ptr(), b, h, t, d, *(x.stride(i) if x.shape[i] > 1 else 0 for i in range(3)),
            cos.data_ptr(), sin.data_ptr(), cos.stride(0) if cos.shape[0] > 1 else 0, cos.stride(1),
            out.data_ptr(), *out.stride()[:3], int(backward), torch.get_num_threads(),
        )  # fmt: skip
    return out


class RopeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, lib: Any):
        ctx.save_for_backward(cos, sin)
        ctx.lib = lib
        return _rotate(lib, q, cos, sin, False), _rotate(lib, k, cos, sin, False)

    @staticmethod
    def backward(ctx: Any, gq: torch.Tensor | None, gk: torch.Tensor | None):
        cos, sin = ctx.saved_tensors
        grads = []
        for g, needed in ((gq, ctx.needs_input_grad[0]), (gk, ctx.needs_input_grad[1])):
            if g is None or not needed:
                grads.append(None)
                continue
            if g.stride(-1) != 1:
                g = g.contiguous()
            grads.append(_rotate(ctx.lib, g, cos, sin, True))
        return grads[0], grads[1], None, None, None


def _kernel_call(q: Any, k: Any, cos: Any, sin: Any, unsqueeze_dim: int, rest: tuple, extra: dict) -> bool:
    tensors = (q, k, cos, sin)
    if (
        rest
        or extra
        or not isinstance(unsqueeze_dim, int)
        or unsqueeze_dim != 1
        or not all(isinstance(t, torch.Tensor) for t in tensors)
    ):
        return False
    if any(t.dtype != torch.float32 or t.device.type != "cpu" or t.stride(-1) != 1 for t in tensors):
        return False
    if (
        q.dim() != 4
        or k.dim() != 4
        or cos.dim() != 3
        or cos.shape != sin.shape
        or cos.stride() != sin.stride()
    ):
        return False
    d = q.shape[-1]
    return (
        d % 2 == 0
        and k.shape[-1] == d
        and cos.shape[-1] == d
        and k.shape[0] == q.shape[0]
        and k.shape[2] == q.shape[2] == cos.shape[1]
        and cos.shape[0] in (1, q.shape[0])
        and not (cos.requires_grad or sin.requires_grad)
        and not torch.is_autocast_enabled("cpu")
    )


def _switched(original: Callable, lib: Any) -> Callable:
    @functools.wraps(original)
    def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1, *rest, **extra):
        if _kernel_call(q, k, cos, sin, unsqueeze_dim, rest, extra):
            return RopeFunction.apply(q, k, cos, sin, lib)
        return original(q, k, cos, sin, unsqueeze_dim, *rest, **extra)

    setattr(apply_rotary_pos_emb, ORIGINAL, original)
    return apply_rotary_pos_emb


def _agrees(original: Callable, lib: Any) -> bool:
    """The kernel computes what `original` computes, forward and backward, on a random probe."""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 6, 3, 8, generator=gen).transpose(1, 2).requires_grad_()
    k = torch.randn(2, 6, 1, 8, generator=gen).transpose(1, 2).requires_grad_()
    cos, sin = torch.randn(2, 6, 8, generator=gen), torch.randn(2, 6, 8, generator=gen)
    gq, gk = torch.randn(2, 3, 6, 8, generator=gen), torch.randn(2, 1, 6, 8, generator=gen)
    try:
        expected = original(q, k, cos, sin)
        grads = torch.autograd.grad(expected, (q, k), (gq, gk))
        got = RopeFunction.apply(q, k, cos, sin, lib)
        got_grads = torch.autograd.grad(got, (q, k), (gq, gk))
    except Exception:  # noqa: BLE001 - a rotation we do not understand keeps its own function
        return False
    pairs = [*zip(expected, got), *zip(grads, got_grads)]
    return all(a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in pairs)


def use_fast_rope(model: torch.nn.Module) -> int:
    """Switch the rotary function of each modeling module `model` is built from; returns how many."""
    lib = load()
    if lib is None:
        return 0
    count = 0
    for name in sorted({type(m).__module__ for m in model.modules()}):
        module = sys.modules.get(name)
        original = getattr(module, NAME, None)
        if not callable(original) or hasattr(original, ORIGINAL):
            continue
        if _agrees(original, lib):
            setattr(module, NAME, _switched(original, lib))
            count += 1
    return count
