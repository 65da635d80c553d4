"""The one-pass RMSNorm kernel (swift_core/train/rms_norm_cpu.py) against transformers' own norms.

Same output and gradients as Llama's/Qwen2's RMSNorm within fp32 rounding, the weight's gradient
only when it trains, the same bits whatever the thread count; a norm that computes something
else (Gemma's `1 + weight`) or a call it does not cover keeps the model's own forward.
"""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import built_kernel
from transformers.models.gemma.modeling_gemma import GemmaRMSNorm
from transformers.models.llama.modeling_llama import LlamaRMSNorm
from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

from swift_core.train import rms_norm_cpu
from swift_core.train.rms_norm_cpu import RMSNormFunction, use_fast_rms_norm


@pytest.fixture(scope="module")
def lib():
    return built_kernel(rms_norm_cpu.load, "RMSNorm kernel")


def _norm(kind: type, n: int, eps: float = 1e-6) -> torch.nn.Module:
    norm = kind(n, eps=eps)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    return norm


def _run(norm: torch.nn.Module, x: torch.Tensor, g: torch.Tensor):
    x = x.clone().requires_grad_()
    norm.zero_grad(set_to_none=True)
    y = norm(x)
    y.backward(g)
    return y.detach(), x.grad, norm.weight.grad


@pytest.mark.parametrize("kind", [LlamaRMSNorm, Qwen2RMSNorm])
@pytest.mark.parametrize("shape", [(1, 37, 80), (2, 5, 512), (3, 1, 33)])
def test_same_output_and_gradients_as_the_models_norm(lib, kind, shape):
    torch.manual_seed(0)
    own = _norm(kind, shape[-1], eps=1e-5)
    fast = copy.deepcopy(own)
    assert use_fast_rms_norm(fast) == 1
    x, g = torch.randn(shape) * 3, torch.randn(shape)
    for expected, got in zip(_run(own, x, g), _run(fast, x, g)):
        assert got is not None and got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)


def test_a_frozen_weight_gets_no_gradient_and_the_input_the_same(lib):
    own = _norm(Qwen2RMSNorm, 64).requires_grad_(False)
    fast = copy.deepcopy(own)
    use_fast_rms_norm(fast)
    x, g = torch.randn(4, 9, 64), torch.randn(4, 9, 64)
    (_, gx1, gw1), (_, gx2, gw2) = _run(own, x, g), _run(fast, x, g)
    assert gw1 is None and gw2 is None
    torch.testing.assert_close(gx2, gx1, rtol=1e-5, atol=2e-5)


def test_results_do_not_depend_on_the_thread_count(lib):
    norm = _norm(Qwen2RMSNorm, 200)
    use_fast_rms_norm(norm)
    x, g = torch.randn(257, 200), torch.randn(257, 200)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _run(norm, x, g)
        torch.set_num_threads(2)
        two = _run(norm, x, g)
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_gemmas_one_plus_weight_norm_keeps_its_own_forward(lib, monkeypatch):
    norm = GemmaRMSNorm(64, eps=1e-6)
    assert use_fast_rms_norm(norm) == 0
    calls = []
    monkeypatch.setattr(RMSNormFunction, "apply", lambda *a: calls.append(a))
    norm(torch.randn(2, 64))
    assert calls == []


def test_other_dtypes_take_the_models_own_forward(lib, monkeypatch):
    norm = _norm(Qwen2RMSNorm, 32)
    assert use_fast_rms_norm(norm) == 1
    applied = []
    real = RMSNormFunction.apply
    monkeypatch.setattr(RMSNormFunction, "apply", lambda *a: applied.append(1) or real(*a))
    norm(torch.randn(2, 32))
    assert applied == [1]
    norm.double()(torch.randn(2, 32, dtype=torch.float64))
    assert applied == [1]


def test_switched_off_nothing_is_switched(monkeypatch):
    monkeypatch.setenv("SWIFT_CPU_KERNELS", "0")
    rms_norm_cpu.load.cache_clear()
    try:
        assert use_fast_rms_norm(_norm(Qwen2RMSNorm, 16)) == 0
    finally:
        monkeypatch.delenv("SWIFT_CPU_KERNELS")
        rms_norm_cpu.load.cache_clear()


def test_a_copy_of_a_switched_model_uses_its_own_weight(lib):
    norm = _norm(Qwen2RMSNorm, 16)
    use_fast_rms_norm(norm)
    twin = copy.deepcopy(norm)
    with torch.no_grad():
        twin.weight.mul_(2)
    x = torch.randn(3, 16)
    torch.testing.assert_close(twin(x), 2 * norm(x))


def test_a_whole_model_trains_the_same(lib, tiny_qwen):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    own = AutoModelForCausalLM.from_pretrained(str(tiny_qwen), dtype=torch.float32)
    fast = copy.deepcopy(own)
    assert use_fast_rms_norm(fast) == 2 * own.config.num_hidden_layers + 1
    ids = torch.randint(0, own.config.vocab_size, (2, 24))
    losses = []
    for model in (own, fast):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], abs=1e-5)
    for (name, a), b in zip(own.named_parameters(), fast.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=name)
