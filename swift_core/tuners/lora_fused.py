"""LoRA's linear layer as one autograd node on the CPU: fewer passes over the activations.

peft computes a LoRA linear as `base(x) + B(A(dropout(x))) * scaling`: besides the matmuls, each
of the seven adapted projections of a layer writes and reads a scaled copy and a sum of its full
(tokens x out) output in the forward, and as many again in the backward, plus the dropout's own
multiplications; on the CPU, where those passes cost memory bandwidth rather than nothing, the
elementwise `mul` was ~13% of a LoRA step of the issue-20 work (profiled), second only to the
matmuls. Here the same function is one `torch.autograd.Function`: the low-rank product is added
into the base output in place (`addmm_` with `alpha=scaling`), the dropout mask is applied once
in each direction, and the backward computes only the gradients autograd asks for (the frozen
base weight gets none, so its input is not kept). Same formula, same random draws as
`FastDropout`; only the summation order differs (float rounding, ~1e-7 relative).

With dropout on fp32, where the CPU kernels of `lora_cpu_kernel` build, the low-rank half runs in
them instead (`LoraLinearKernelFunction`): the mask is drawn, applied and kept as bits inside the
kernels, so the backward keeps the input rather than a masked copy and a byte mask. Its masks
are the kernels' own (reproducible under torch's seed, not FastDropout's draws).

Used only where it is exactly peft's vanilla LoRA: a plain `nn.Linear` base and adapters, one
active adapter, no variant (DoRA...), no lora bias, not merged or disabled, no module hooks (ZeRO-3
gathers parameters in hooks: such layers keep peft's forward), tensors on the CPU in one floating
dtype, no autocast. Anything else calls peft's own forward. Off the CPU the fused kernels of other
libraries (Liger, unsloth) are the better choice, so nothing changes there.
"""

from __future__ import annotations

import types
from typing import Any

import torch

from swift_core.tuners import lora_cpu_kernel

FUSED_ATTR = "_swift_peft_forward"


def _up_grads(
    g: torch.Tensor, z: torch.Tensor, lora_b: torch.Tensor, scaling: float, z_factor: float, need_lb: bool
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """lora_B's gradient (where asked) and the gradient at the (tokens x rank) product, both
    backward paths' shared part; `z_factor` is the dropout's keep scale (1 without dropout).

    Operand orders chosen by measurement (MKL, one thread, 2,362 tokens): `g.t() @ z` took 30 ms
    for a 1,536-wide layer, `(z.t() @ g).t()` 2 ms; `g @ B` with B (out x r) row-major 4.6 ms,
    against B's transpose made contiguous 2.2 ms."""
    grad_lb = (z.t() @ g).t().mul_(scaling) if need_lb else None
    gz = (g @ lora_b.t().contiguous().t()).mul_(scaling)
    if z_factor != 1.0:
        gz.mul_(z_factor)
    return grad_lb, gz


def _base_grads(
    g: torch.Tensor, x2: torch.Tensor, need_w: bool, need_bias: bool
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The base layer's weight and bias gradients, where trainable (full fine-tuning beside LoRA)."""
    return (g.t() @ x2 if need_w else None), (g.sum(0) if need_bias else None)


class LoraLinearFunction(torch.autograd.Function):
    """y = x W^T + b + scaling * ((x with `drop` zeroed) A^T * keep_scale) B^T, with its backward.

    The dropout's scale is applied to the (tokens x rank) product, not to the input: the same
    numbers up to rounding, one pass over the activations fewer."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        scaling: float,
        drop: torch.Tensor | None,
        keep_scale: float,
    ) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        # torch.where writes the masked copy in one pass; an out-of-place masked_fill clones x first.
        dx = x2 if drop is None else torch.where(drop.reshape(x2.shape), 0.0, x2)
        y = torch.nn.functional.linear(x2, weight, bias)
        z = dx @ lora_a.t()
        if drop is not None:
            z.mul_(keep_scale)
        y.addmm_(z, lora_b.t(), alpha=scaling)
        ctx.scaling, ctx.keep_scale, ctx.lead, ctx.has_bias = scaling, keep_scale, lead, bias is not None
        ctx.save_for_backward(
            x2 if weight.requires_grad else None,
            dx if lora_a.requires_grad else None,
            z,
            weight,
            lora_a,
            lora_b,
            drop.reshape(x2.shape) if drop is not None else None,
        )
        return y.view(*lead, y.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x2, dx, z, weight, lora_a, lora_b, drop = ctx.saved_tensors
        need_x, need_w, need_b, need_a, need_lb = ctx.needs_input_grad[:5]
        g = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_a = None
        grad_lb, gz = _up_grads(
            g, z, lora_b, ctx.scaling, ctx.keep_scale if drop is not None else 1.0, need_lb
        )
        if need_a:
            grad_a = gz.t() @ dx
        if need_x:
            if drop is None:
                grad_x = (g @ weight).addmm_(gz, lora_a)
            else:
                # The masked low-rank part first, then the base product accumulated into it by the
                # GEMM itself: no separate (tokens x in) sum pass and no extra tensor of that size.
                grad_x = (gz @ lora_a).masked_fill_(drop, 0.0).addmm_(g, weight)
            grad_x = grad_x.view(*ctx.lead, grad_x.shape[-1])
        grad_w, grad_bias = _base_grads(g, x2, need_w, need_b and ctx.has_bias)
        return grad_x, grad_w, grad_bias, grad_a, grad_lb, None, None, None


class LoraLinearKernelFunction(torch.autograd.Function):
    """The same y as `LoraLinearFunction` with dropout, its low-rank half in `lora_cpu_kernel`.

    The mask comes from the kernel's hash of `seed` (drawn from torch's generator), not from
    torch's draws; the backward keeps the input and one bit per element, not a masked copy."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        scaling: float,
        lib: Any,
        seed: int,
        cut: int,
    ) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        a = lora_a.contiguous()
        keep_scale = lora_cpu_kernel.keep_scale(cut)
        z, bits = lora_cpu_kernel.down(lib, x2, a, seed, cut, keep_scale)
        y = torch.nn.functional.linear(x2, weight, bias)
        y.addmm_(z, lora_b.t(), alpha=scaling)
        ctx.scaling, ctx.keep_scale, ctx.lead = scaling, keep_scale, lead
        ctx.has_bias, ctx.lib = bias is not None, lib
        ctx.save_for_backward(x2, z, bits, weight, a, lora_b)
        return y.view(*lead, y.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x2, z, bits, weight, lora_a, lora_b = ctx.saved_tensors
        need_x, need_w, need_b, need_a, need_lb = ctx.needs_input_grad[:5]
        g = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_a = None
        grad_lb, gz = _up_grads(g, z, lora_b, ctx.scaling, ctx.keep_scale, need_lb)
        if need_a:
            grad_a = lora_cpu_kernel.grad_a(ctx.lib, gz, x2, bits)
        if need_x:
            grad_x = g @ weight
            lora_cpu_kernel.grad_x_add_(ctx.lib, grad_x, gz, lora_a, bits)
            grad_x = grad_x.view(*ctx.lead, grad_x.shape[-1])
        grad_w, grad_bias = _base_grads(g, x2, need_w, need_b and ctx.has_bias)
        return grad_x, grad_w, grad_bias, grad_a, grad_lb, None, None, None, None


def _plain(p: torch.Tensor | None) -> bool:
    return p is None or (p.device.type == "cpu" and p.numel() > 0 and not hasattr(p, "device_mesh"))


def _hooked(module: torch.nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _fusable(layer: Any, x: torch.Tensor) -> str | None:
    """The active adapter's name when this call is exactly vanilla LoRA on the CPU, else None."""
    if layer.disable_adapters or layer.merged or x.device.type != "cpu" or torch.is_autocast_enabled("cpu"):
        return None
    active = layer.active_adapters
    if len(active) != 1 or active[0] not in layer.lora_A or active[0] in layer.lora_variant:
        return None
    name = active[0]
    base, a, b = layer.base_layer, layer.lora_A[name], layer.lora_B[name]
    if type(base) is not torch.nn.Linear or type(a) is not torch.nn.Linear or type(b) is not torch.nn.Linear:
        return None
    if a.bias is not None or b.bias is not None or _hooked(base) or _hooked(a) or _hooked(b):
        return None
    tensors = (base.weight, base.bias, a.weight, b.weight)
    if not all(_plain(t) for t in tensors) or any(t is not None and t.dtype != x.dtype for t in tensors):
        return None
    return name


def _drop_mask(dropout: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor | None, float] | None:
    """(mask, scale) for the adapter's dropout; (None, 1) for none; None where only the module can do it."""
    if isinstance(dropout, torch.nn.Identity) or not dropout.training or getattr(dropout, "p", 0.0) == 0:
        return None, 1.0
    drop_mask = getattr(dropout, "drop_mask", None)
    return drop_mask(x) if drop_mask is not None else None


def _kernel_dropout(dropout: torch.nn.Module, x: torch.Tensor) -> tuple[Any, int] | None:
    """(kernels, cut) where the CPU kernels can draw this dropout: an active `nn.Dropout` on fp32."""
    if not isinstance(dropout, torch.nn.Dropout) or not dropout.training or x.dtype != torch.float32:
        return None
    cut = lora_cpu_kernel.mask_cut(dropout.p)
    if not 0 < cut < lora_cpu_kernel.LANES:
        return None
    lib = lora_cpu_kernel.load()
    return (lib, cut) if lib is not None else None


def fused_lora_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """peft `lora.Linear.forward`, one autograd node where `_fusable`; peft's own otherwise."""
    peft_forward = getattr(self, FUSED_ATTR)
    name = None if args or kwargs or not x.is_floating_point() else _fusable(self, x)
    if name is None:
        return peft_forward(x, *args, **kwargs)
    base = self.base_layer
    kernel = _kernel_dropout(self.lora_dropout[name], x)
    if kernel is not None:
        lib, cut = kernel
        return LoraLinearKernelFunction.apply(
            x,
            base.weight,
            base.bias,
            self.lora_A[name].weight,
            self.lora_B[name].weight,
            float(self.scaling[name]),
            lib,
            lora_cpu_kernel.draw_seed(),
            cut,
        )
    mask = _drop_mask(self.lora_dropout[name], x)
    if mask is None:
        return peft_forward(x, *args, **kwargs)
    drop, keep_scale = mask
    return LoraLinearFunction.apply(
        x,
        base.weight,
        base.bias,
        self.lora_A[name].weight,
        self.lora_B[name].weight,
        float(self.scaling[name]),
        drop,
        keep_scale,
    )


def use_fused_lora(model: Any) -> int:
    """Give every peft LoRA `Linear` the fused forward (it decides per call); returns how many."""
    try:
        from peft.tuners.lora.layer import Linear as LoraLinear
    except ImportError:
        return 0
    count = 0
    dropout_on_cpu = False
    for module in model.modules():
        if type(module) is LoraLinear and not hasattr(module, FUSED_ATTR):
            setattr(module, FUSED_ATTR, module.forward)
            module.forward = types.MethodType(fused_lora_forward, module)
            count += 1
            dropout_on_cpu = dropout_on_cpu or (
                module.weight.device.type == "cpu"
                and any(isinstance(d, torch.nn.Dropout) and d.p > 0 for d in module.lora_dropout.values())
            )
    if dropout_on_cpu:
        lora_cpu_kernel.load()  # built now, while the run sets up, rather than inside its first step
    return count
