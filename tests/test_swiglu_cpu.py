"""The one-pass `silu(gate) * up` kernel (swift_core/train/swiglu_cpu.py) against transformers' MLPs.

Same output and gradients as Llama's/Qwen2's MLP within fp32 rounding (sizes that are not a
multiple of the kernel's 8 lanes included), with LoRA adapters and their dropout drawing the same
masks as the model's own forward under the same seed; the same bits whatever the thread count;
an MLP with another activation, or a call that is not fp32, keeps the model's own computation.
"""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import built_kernel
from transformers.models.llama.modeling_llama import LlamaConfig, LlamaMLP
from transformers.models.qwen2.modeling_qwen2 import Qwen2Config, Qwen2MLP

from swift_core.train import swiglu_cpu
from swift_core.train.swiglu_cpu import SwigluFunction, use_fast_swiglu


@pytest.fixture(scope="module")
def lib():
    return built_kernel(swiglu_cpu.load, "SwiGLU kernel")


def _mlp(kind, config_cls, hidden: int = 24, intermediate: int = 37, act: str = "silu"):
    torch.manual_seed(0)
    config = config_cls(
        hidden_size=hidden, intermediate_size=intermediate, hidden_act=act, num_attention_heads=4
    )
    return kind(config)


def _run(mlp: torch.nn.Module, x: torch.Tensor, seed: int = 0):
    x = x.clone().requires_grad_()
    mlp.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    y = mlp(x)
    y.backward(torch.ones_like(y))
    return [y.detach(), x.grad] + [p.grad for p in mlp.parameters() if p.requires_grad]


@pytest.mark.parametrize(("kind", "config_cls"), [(LlamaMLP, LlamaConfig), (Qwen2MLP, Qwen2Config)])
def test_same_output_and_gradients_as_the_models_mlp(lib, kind, config_cls):
    own = _mlp(kind, config_cls)
    fast = copy.deepcopy(own)
    assert use_fast_swiglu(fast) == 1
    x = torch.randn(2, 5, 24) * 3
    for expected, got in zip(_run(own, x), _run(fast, x)):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_with_lora_and_dropout_the_same_masks_and_gradients(lib):
    from peft import LoraConfig, get_peft_model

    from swift_core.train.fast_dropout import use_fast_dropout

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = _mlp(Qwen2MLP, Qwen2Config, intermediate=40)

        def forward(self, x):
            return self.mlp(x)

    config = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.2, target_modules=["gate_proj", "up_proj", "down_proj"]
    )
    own = get_peft_model(Block(), config)
    use_fast_dropout(own)
    fast = copy.deepcopy(own)
    assert use_fast_swiglu(fast) == 1
    assert fast.training and all(m.training for m in fast.modules())  # the probe ran in eval mode
    x = torch.randn(3, 7, 24)
    for expected, got in zip(_run(own, x, seed=5), _run(fast, x, seed=5)):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_results_do_not_depend_on_the_thread_count(lib):
    gate, up = torch.randn(301, 77, requires_grad=True), torch.randn(301, 77, requires_grad=True)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = SwigluFunction.apply(gate, up, lib)
            results.append([out.detach(), *torch.autograd.grad(out, (gate, up), torch.ones_like(out))])
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_silu_holds_over_the_whole_float_range(lib):
    gate = torch.linspace(-200, 200, 40_001)
    torch.testing.assert_close(
        SwigluFunction.apply(gate, torch.ones_like(gate), lib),
        torch.nn.functional.silu(gate),
        rtol=1e-6,
        atol=1e-6,
    )


def test_another_activation_keeps_its_own_forward(lib):
    assert use_fast_swiglu(_mlp(Qwen2MLP, Qwen2Config, act="gelu")) == 0


def test_other_dtypes_take_the_models_own_computation(lib, monkeypatch):
    mlp = _mlp(Qwen2MLP, Qwen2Config)
    assert use_fast_swiglu(mlp) == 1
    applied = []
    real = SwigluFunction.apply
    monkeypatch.setattr(SwigluFunction, "apply", lambda *a: applied.append(1) or real(*a))
    mlp(torch.randn(2, 24))
    assert applied == [1]
    mlp.double()(torch.randn(2, 24, dtype=torch.float64))
    assert applied == [1]
