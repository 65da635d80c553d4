"""The one-pass rotary-embedding kernel (swift_core/train/rope_cpu.py) against transformers' own.

Same rotated q and k and the same gradients as the modeling module's `apply_rotary_pos_emb`
within fp32 rounding, on the transposed views transformers passes; the same bits whatever the
thread count; a family with another rotation, or a call the kernel does not cover, keeps the
original. Each test restores the modeling module's function (the switch is process-wide).
"""

from __future__ import annotations

import copy
import sys
import types

import pytest
import torch
import transformers.models.llama.modeling_llama as llama
import transformers.models.qwen2.modeling_qwen2 as qwen2
from helpers import built_kernel

from swift_core.train import rope_cpu
from swift_core.train.rope_cpu import NAME, ORIGINAL, RopeFunction, use_fast_rope


@pytest.fixture(scope="module")
def lib():
    return built_kernel(rope_cpu.load, "RoPE kernel")


@pytest.fixture
def restore(monkeypatch):
    """Each test starts from transformers' own functions (an earlier in-process run may have
    switched them) and whatever it switches is put back afterwards."""
    for module in (llama, qwen2):
        current = getattr(module, NAME)
        monkeypatch.setattr(module, NAME, getattr(current, ORIGINAL, current))


def _tiny(config_cls, model_cls, **extra):
    config = config_cls(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=96, vocab_size=61, **extra,
    )  # fmt: skip
    torch.manual_seed(0)
    return model_cls(config)


def _inputs(batch: int, cos_batch: int, t: int = 7, d: int = 16):
    q = torch.randn(batch, t, 4, d).transpose(1, 2).requires_grad_()
    k = torch.randn(batch, t, 2, d).transpose(1, 2).requires_grad_()
    angles = torch.randn(cos_batch, t, d // 2)
    emb = torch.cat([angles, angles], dim=-1)
    return q, k, emb.cos(), emb.sin()


def _rotate_and_grads(fn, q, k, cos, sin):
    gen = torch.Generator().manual_seed(1)
    out = fn(q, k, cos, sin)
    gq, gk = (torch.randn(o.shape, generator=gen) for o in out)
    return [o.detach() for o in out] + list(torch.autograd.grad(out, (q, k), (gq, gk)))


@pytest.mark.parametrize("module", [llama, qwen2])
@pytest.mark.parametrize(("batch", "cos_batch"), [(1, 1), (2, 2), (2, 1)])
def test_same_rotation_and_gradients_as_transformers(lib, restore, module, batch, cos_batch):
    original = getattr(module, NAME)
    model = _tiny(qwen2.Qwen2Config, qwen2.Qwen2ForCausalLM) if module is qwen2 else None
    model = model or _tiny(llama.LlamaConfig, llama.LlamaForCausalLM)
    assert use_fast_rope(model) == 1
    fast = getattr(module, NAME)
    assert fast is not original
    q, k, cos, sin = _inputs(batch, cos_batch)
    for expected, got in zip(
        _rotate_and_grads(original, q, k, cos, sin), _rotate_and_grads(fast, q, k, cos, sin)
    ):
        assert got.shape == expected.shape and got.stride() == expected.stride()
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_switching_twice_switches_nothing_more(lib, restore):
    model = _tiny(qwen2.Qwen2Config, qwen2.Qwen2ForCausalLM)
    assert use_fast_rope(model) == 1
    switched = qwen2.apply_rotary_pos_emb
    assert use_fast_rope(copy.deepcopy(model)) == 0 and qwen2.apply_rotary_pos_emb is switched


def test_results_do_not_depend_on_the_thread_count(lib):
    q, k, cos, sin = _inputs(2, 2, t=33, d=64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _rotate_and_grads(lambda *a: RopeFunction.apply(*a, lib), q, k, cos, sin)
        torch.set_num_threads(2)
        two = _rotate_and_grads(lambda *a: RopeFunction.apply(*a, lib), q, k, cos, sin)
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_another_rotation_keeps_its_own_function(lib, monkeypatch):
    """A made-up family that rotates interleaved pairs (GPT-J's way): the probe disagrees."""

    def interleaved(q, k, cos, sin, unsqueeze_dim=1):
        def rot(x):
            pairs = x.unflatten(-1, (-1, 2))
            return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)

        cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
        return q * cos + rot(q) * sin, k * cos + rot(k) * sin

    family = types.ModuleType("swift_test_interleaved_family")
    family.apply_rotary_pos_emb = interleaved
    monkeypatch.setitem(sys.modules, family.__name__, family)
    attention = type("Attention", (torch.nn.Module,), {"__module__": family.__name__})
    assert use_fast_rope(attention()) == 0
    assert family.apply_rotary_pos_emb is interleaved


def test_calls_the_kernel_does_not_cover_go_to_the_original(lib, restore, monkeypatch):
    use_fast_rope(_tiny(qwen2.Qwen2Config, qwen2.Qwen2ForCausalLM))
    applied = []
    real = RopeFunction.apply
    monkeypatch.setattr(RopeFunction, "apply", lambda *a: applied.append(1) or real(*a))
    q, k, cos, sin = _inputs(1, 1)
    qwen2.apply_rotary_pos_emb(q, k, cos, sin)
    assert applied == [1]
    qwen2.apply_rotary_pos_emb(q.double(), k.double(), cos.double(), sin.double())
    qwen2.apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin, unsqueeze_dim=2)
    assert applied == [1]


def test_a_whole_model_trains_the_same(lib, restore):
    own = _tiny(qwen2.Qwen2Config, qwen2.Qwen2ForCausalLM)
    ids = torch.randint(0, own.config.vocab_size, (2, 24))
    loss = own(input_ids=ids, labels=ids).loss
    loss.backward()
    fast = _tiny(qwen2.Qwen2Config, qwen2.Qwen2ForCausalLM)
    assert use_fast_rope(fast) == 1
    fast_loss = fast(input_ids=ids, labels=ids).loss
    fast_loss.backward()
    assert fast_loss.item() == pytest.approx(loss.item(), abs=1e-5)
    for (name, a), b in zip(own.named_parameters(), fast.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=name)
