"""RMSNorm in one pass forward and one backward, for fp32 training on the CPU.

Why our own: the models' RMSNorm (`x.pow(2).mean(-1)`, `rsqrt`, two multiplies) is several
elementwise operations forward and more through autograd backward; on the issue-20 work one norm
over a pack of 2,362 tokens took ~5.7 ms forward and backward on one thread, 17 of them per step
(measured), where one pass each way costs about 1 ms. No library fuses it on the CPU (Liger and
unsloth are GPU kernels). `rms_norm_cpu.c` keeps only the input and one reciprocal per row for
the backward, and skips the weight's gradient when the weight is frozen (LoRA).

A norm is switched only after its own forward and the kernel agreed on a probe input, so a
variant that computes something else (Gemma's `1 + weight`, another place for epsilon) keeps its
own; calls that are not fp32 on the CPU, or whose weight is sharded (ZeRO-3, FSDP), take it too.
Where the kernel cannot be built (no compiler, `SWIFT_CPU_KERNELS=0`) nothing is switched.
"""

from __future__ import annotations

import ctypes
import functools
import types
from pathlib import Path
from typing import Any

import torch

from swift_core import native_build

SOURCE = Path(__file__).with_name("rms_norm_cpu.c")
ABI = 1
OWN_FORWARD = "_swift_own_rms_norm_forward"


@functools.cache
def load() -> ctypes.CDLL | None:
    lib = native_build.load_library(SOURCE)
    if lib is None:
        return None
    p, i64, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    lib.swift_rms_norm_abi.restype = ctypes.c_int
    lib.swift_rms_norm_fwd.argtypes = [p, p, f32, i64, i64, p, p, i32]
    lib.swift_rms_norm_bwd.argtypes = [p, p, p, p, i64, i64, p, p, i32]
    lib.swift_rms_norm_fwd.restype = lib.swift_rms_norm_bwd.restype = None
    return lib if lib.swift_rms_norm_abi() == ABI else None


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float, lib: Any) -> torch.Tensor:
        n = x.shape[-1]
        x2 = x.reshape(-1, n).contiguous()
        rows = x2.shape[0]
        y = torch.empty_like(x2)
        rstd = torch.empty(rows, dtype=torch.float32)
        if rows:
            lib.swift_rms_norm_fwd(
                x2.data_ptr(),
                weight.data_ptr(),
                eps,
                rows,
                n,
                y.data_ptr(),
                rstd.data_ptr(),
                torch.get_num_threads(),
            )
        ctx.save_for_backward(x2, weight, rstd)
        ctx.lib = lib
        return y.view(x.shape)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        x2, weight, rstd = ctx.saved_tensors
        rows, n = x2.shape
        g2 = grad.reshape(rows, n).contiguous()
        gx = torch.empty_like(x2)
        gw = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        if rows:
            ctx.lib.swift_rms_norm_bwd(
                g2.data_ptr(),
                x2.data_ptr(),
                weight.data_ptr(),
                rstd.data_ptr(),
                rows,
                n,
                gx.data_ptr(),
                None if gw is None else gw.data_ptr(),
                torch.get_num_threads(),
            )
        return (gx.view(grad.shape) if ctx.needs_input_grad[0] else None), gw, None, None


def _eps(module: torch.nn.Module) -> float | None:
    for name in ("variance_epsilon", "eps"):
        value = getattr(module, name, None)
        if isinstance(value, float):
            return value
    return None


def _kernel_call(module: torch.nn.Module, x: torch.Tensor) -> bool:
    w = module.weight
    return (
        x.dtype == torch.float32
        and x.device.type == "cpu"
        and w.dtype == torch.float32
        and w.device.type == "cpu"
        and w.dim() == 1
        and w.numel() == x.shape[-1]
        and w.is_contiguous()
        and not hasattr(w, "device_mesh")
        and not torch.is_autocast_enabled("cpu")
    )


def fast_rms_norm_forward(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    lib = load()
    if lib is None or not _kernel_call(self, x):
        return getattr(self, OWN_FORWARD)(x)
    return RMSNormFunction.apply(x, self.weight, _eps(self), lib)


def _agrees(module: torch.nn.Module, own: Any, lib: Any) -> bool:
    """The kernel computes what this norm's own forward computes (a probe with a random weight)."""
    n = module.weight.numel()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, n, generator=generator)
    weight = torch.rand(n, generator=generator) + 0.5
    saved = module.weight.detach().clone()
    try:
        with torch.no_grad():
            module.weight.copy_(weight)
            expected = own(x)
            got = RMSNormFunction.apply(x, module.weight, _eps(module), lib)
    except Exception:  # noqa: BLE001 - a norm we do not understand keeps its own forward
        return False
    finally:
        with torch.no_grad():
            module.weight.copy_(saved)
    return expected.shape == got.shape and torch.allclose(expected, got, rtol=1e-5, atol=1e-5)


def use_fast_rms_norm(model: torch.nn.Module) -> int:
    """Give every RMSNorm of `model` that the kernel computes exactly the one-pass forward; returns how many."""
    lib = load()
    if lib is None:
        return 0
    count = 0
    agreed: dict[type, bool] = {}
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if (
            not type(module).__name__.endswith("RMSNorm")
            or hasattr(module, OWN_FORWARD)
            or not isinstance(weight, torch.nn.Parameter)
            or _eps(module) is None
            or not _kernel_call(module, weight.detach())
        ):
            continue
        own = module.forward
        kind = type(module)
        if kind not in agreed:
            agreed[kind] = _agrees(module, own, lib)
        if agreed[kind]:
            setattr(module, OWN_FORWARD, own)
            module.forward = types.MethodType(fast_rms_norm_forward, module)
            count += 1
    return count
