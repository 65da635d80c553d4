"""The gated MLP's `silu(gate) * up` in one pass forward and one backward, for fp32 on the CPU.

Why our own: autograd of `silu(gate) * up` writes silu(gate), then the product, and keeps
silu(gate) beside gate and up for the backward, which is three more passes (the product's two
gradients, then silu's); on the issue-20 work that is an intermediate-sized tensor (2,362 x 1,536
floats, 14.5 MB) more per layer held until the backward, and ~10 ms per layer on one thread
(measured). `swiglu_cpu.c` writes the product only and recomputes sigmoid(gate) in its single
backward pass. torch.compile fuses this too but costs ~15 s of compiling per process
(docs/training.md).

An MLP (a module named `...MLP` with `gate_proj`, `up_proj`, `down_proj` and a SiLU `act_fn`)
is switched only after its own forward and the switched one agreed on a probe, so one that
computes something else keeps its own; calls that are not fp32 on the CPU take `act_fn(gate) * up`.
The projections are called in the model's order, so their dropout draws what it drew.
"""

from __future__ import annotations

import ctypes
import functools
import types
from pathlib import Path
from typing import Any

import torch

from swift_core import native_build

SOURCE = Path(__file__).with_name("swiglu_cpu.c")
ABI = 1
OWN_FORWARD = "_swift_own_mlp_forward"


@functools.cache
def load() -> ctypes.CDLL | None:
    lib = native_build.load_library(SOURCE)
    if lib is None:
        return None
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.swift_swiglu_abi.restype = ctypes.c_int
    lib.swift_swiglu_fwd.argtypes = [p, p, p, i64, i32]
    lib.swift_swiglu_bwd.argtypes = [p, p, p, p, p, i64, i32]
    lib.swift_swiglu_fwd.restype = lib.swift_swiglu_bwd.restype = None
    return lib if lib.swift_swiglu_abi() == ABI else None


class SwigluFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, gate: torch.Tensor, up: torch.Tensor, lib: Any) -> torch.Tensor:
        gate, up = gate.contiguous(), up.contiguous()
        out = torch.empty_like(gate)
        lib.swift_swiglu_fwd(
            gate.data_ptr(), up.data_ptr(), out.data_ptr(), gate.numel(), torch.get_num_threads()
        )
        ctx.save_for_backward(gate, up)
        ctx.lib = lib
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        gate, up = ctx.saved_tensors
        grad = grad.contiguous()
        g_gate, g_up = torch.empty_like(gate), torch.empty_like(up)
        ctx.lib.swift_swiglu_bwd(
            grad.data_ptr(),
            gate.data_ptr(),
            up.data_ptr(),
            g_gate.data_ptr(),
            g_up.data_ptr(),
            gate.numel(),
            torch.get_num_threads(),
        )
        return g_gate, g_up, None


def _kernel_call(gate: torch.Tensor, up: torch.Tensor) -> bool:
    return (
        gate.dtype == up.dtype == torch.float32
        and gate.device.type == up.device.type == "cpu"
        and gate.shape == up.shape
        and not torch.is_autocast_enabled("cpu")
    )


def fast_mlp_forward(self: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    gate = self.gate_proj(x)
    up = self.up_proj(x)
    lib = load()
    if lib is None or not _kernel_call(gate, up):
        return self.down_proj(self.act_fn(gate) * up)
    return self.down_proj(SwigluFunction.apply(gate, up, lib))


def _is_silu(act: Any) -> bool:
    return isinstance(act, torch.nn.SiLU) or type(act).__name__ == "SiLUActivation"


def _candidate(module: torch.nn.Module) -> bool:
    return (
        type(module).__name__.endswith("MLP")
        and not hasattr(module, OWN_FORWARD)
        and all(
            isinstance(getattr(module, n, None), torch.nn.Module)
            for n in ("gate_proj", "up_proj", "down_proj")
        )
        and _is_silu(getattr(module, "act_fn", None))
    )


def _agrees(module: torch.nn.Module) -> bool:
    """Its own forward and the switched one give the same on a probe (in eval mode: no dropout)."""
    weight = next(module.parameters(), None)
    if weight is None or weight.dtype != torch.float32 or weight.device.type != "cpu":
        return False
    width = getattr(module.gate_proj, "in_features", None)
    if not isinstance(width, int):
        return False
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        x = torch.randn(3, width, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            expected = module.forward(x)
            got = fast_mlp_forward(module, x)
    except Exception:  # noqa: BLE001 - an MLP we do not understand keeps its own forward
        return False
    finally:
        for m, mode in modes.items():
            m.training = mode
    return expected.shape == got.shape and torch.allclose(expected, got, rtol=1e-5, atol=1e-5)


def use_fast_swiglu(model: torch.nn.Module) -> int:
    """Give every gated SiLU MLP of `model` the one-pass `silu(gate) * up`; returns how many."""
    if load() is None:
        return 0
    count = 0
    for module in model.modules():
        if _candidate(module) and _agrees(module):
            setattr(module, OWN_FORWARD, module.forward)
            module.forward = types.MethodType(fast_mlp_forward, module)
            count += 1
    return count
