"""The fused LoRA linear (`swift_core.tuners.lora_fused`): peft's numbers, or peft's own forward."""

from __future__ import annotations

import copy

import pytest
import torch
from lora_block import Block, count_applies
from peft import LoraConfig, get_peft_model

from swift_core.train.fast_dropout import use_fast_dropout
from swift_core.tuners import lora_cpu_kernel, lora_fused
from swift_core.tuners.lora_fused import use_fused_lora


def _pair(dropout: float, **config):
    torch.manual_seed(0)
    cfg = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["q", "o"], init_lora_weights=False, **config
    )
    peft_model = get_peft_model(Block(), cfg)
    use_fast_dropout(peft_model)
    fused = copy.deepcopy(peft_model)
    return peft_model, fused, use_fused_lora(fused)


def _run(model, x: torch.Tensor, seed: int = 1):
    x = x.detach().clone().requires_grad_()
    torch.manual_seed(seed)
    y = model(x)
    (y * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return y.detach(), x.grad, grads


def _count_calls(monkeypatch) -> list[int]:
    return count_applies(monkeypatch, lora_fused.LoraLinearFunction)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fused_equals_peft_output_and_every_gradient(dropout, monkeypatch):
    """The torch path, whose masks are FastDropout's draws: the CPU kernels' masks are their own
    (tests/test_lora_cpu_kernel.py checks them against this path on the same mask)."""
    monkeypatch.setattr(lora_cpu_kernel, "load", lambda: None)
    peft_model, fused, patched = _pair(dropout)
    assert patched == 2
    calls = _count_calls(monkeypatch)
    x = torch.randn(3, 5, 16)
    y1, gx1, g1 = _run(peft_model, x)
    calls[0] = 0
    y2, gx2, g2 = _run(fused, x)
    assert calls[0] == 2  # both adapted layers took the fused path
    torch.testing.assert_close(y2, y1, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx2, gx1, rtol=1e-5, atol=1e-6)
    assert g1.keys() == g2.keys() and any("lora_A" in n for n in g1) and any("lora_B" in n for n in g1)
    for name in g1:
        torch.testing.assert_close(g2[name], g1[name], rtol=1e-5, atol=1e-6, msg=name)
    if dropout:  # the same random draws as FastDropout: another seed gives another output
        assert not torch.allclose(_run(fused, x, seed=2)[0], y2)


def test_a_trainable_base_weight_gets_its_gradient(monkeypatch):
    peft_model, fused, _ = _pair(0.0)
    for model in (peft_model, fused):
        model.base_model.model.q.base_layer.weight.requires_grad_(True)
        model.base_model.model.q.base_layer.bias.requires_grad_(True)
    x = torch.randn(2, 7, 16)
    _, _, g1 = _run(peft_model, x)
    _, _, g2 = _run(fused, x)
    assert any("base_layer.weight" in n for n in g2) and any("base_layer.bias" in n for n in g2)
    for name in g1:
        torch.testing.assert_close(g2[name], g1[name], rtol=1e-5, atol=1e-6, msg=name)


def test_peft_forward_where_it_is_not_vanilla_lora(monkeypatch):
    """Disabled adapters (the reference model), a merged adapter, DoRA, eval dropout: peft's own."""
    peft_model, fused, _ = _pair(0.1)
    calls = _count_calls(monkeypatch)
    x = torch.randn(2, 3, 16)
    with fused.disable_adapter(), peft_model.disable_adapter(), torch.no_grad():
        torch.testing.assert_close(fused(x), peft_model(x))
    assert calls[0] == 0
    fused.eval()  # dropout off: the fused path again, equal to peft's in eval
    with torch.no_grad():
        torch.testing.assert_close(fused(x), peft_model.eval()(x), rtol=1e-5, atol=1e-6)
    assert calls[0] == 2
    fused.merge_adapter()
    calls[0] = 0
    with torch.no_grad():
        torch.testing.assert_close(fused(x), peft_model(x), rtol=1e-5, atol=1e-5)
    assert calls[0] == 0
    _, dora, patched = _pair(0.0, use_dora=True)
    assert patched == 2
    _run(dora, x)
    assert calls[0] == 0


def test_the_lora_tuner_fuses_its_layers(tiny_qwen):
    """`swift sft --tuner_type lora` goes through LoraTuner.after_wrap: every adapted linear fused."""
    from transformers import AutoModelForCausalLM

    from swift_core.tuners.peft_tuners import LoraTuner

    model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    LoraTuner().after_wrap(peft_model, None)
    layers = [m for m in peft_model.modules() if type(m).__name__ == "Linear" and hasattr(m, "lora_A")]
    assert layers and all(hasattr(m, lora_fused.FUSED_ATTR) for m in layers)
