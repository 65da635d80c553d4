"""`use_fused_rms_norm`: torch's fused RMSNorm only where it equals the model's own norm."""

from __future__ import annotations

import copy

import torch
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

from swift_core.train.fast_norm import OWN_FORWARD, use_fused_rms_norm


def _forward_backward(norm: torch.nn.Module, x: torch.Tensor):
    x = x.detach().clone().requires_grad_()
    y = norm(x)
    (y * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
    return y.detach(), x.grad, norm.weight.grad


def test_llama_style_norm_is_fused_and_equal_forward_and_backward():
    torch.manual_seed(0)
    own = Qwen2RMSNorm(32, eps=1e-5)
    with torch.no_grad():
        own.weight.uniform_(0.5, 1.5)
    fused = copy.deepcopy(own)
    assert use_fused_rms_norm(fused) == 1 and hasattr(fused, OWN_FORWARD)
    calls = []
    kernel = torch.nn.functional.rms_norm
    torch.nn.functional.rms_norm = lambda *a, **k: calls.append(1) or kernel(*a, **k)
    try:
        x = torch.randn(2, 7, 32) * 4
        for a, b in zip(_forward_backward(own, x), _forward_backward(fused, x)):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        assert calls  # the fused kernel ran
        calls.clear()
        with torch.no_grad():  # half precision: the model's own rounding
            torch.testing.assert_close(fused.bfloat16()(x.bfloat16()), own.bfloat16()(x.bfloat16()))
        assert not calls
    finally:
        torch.nn.functional.rms_norm = kernel


def test_a_norm_that_computes_otherwise_keeps_its_forward():
    """Gemma scales by 1 + weight: the probe sees the difference."""
    gemma = GemmaRMSNorm(32, eps=1e-6)
    assert use_fused_rms_norm(gemma) == 0 and not hasattr(gemma, OWN_FORWARD)


def test_every_norm_of_a_model(tiny_qwen):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen))
    ids = torch.randint(0, model.config.vocab_size, (2, 9))
    before = model(input_ids=ids).logits
    assert use_fused_rms_norm(model) == 2 * model.config.num_hidden_layers + 1
    assert use_fused_rms_norm(model) == 0  # idempotent
    torch.testing.assert_close(model(input_ids=ids).logits, before, rtol=1e-5, atol=1e-5)
