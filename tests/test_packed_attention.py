"""Packed rows trained with `swift_packed_sdpa`: the same loss and gradients as the rows padded
one by one, and no dense mask or cross-row attention on the way."""

from __future__ import annotations

import pytest
import torch

from swift_core.train.packed_attention import segment_bounds, use_packed_attention

LENGTHS = [7, 19, 3, 30, 12]


@pytest.fixture(scope="module")
def models(tiny_qwen):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    padded = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32, attn_implementation="sdpa")
    packed = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    use_packed_attention(packed)
    return padded.eval(), packed.eval()


def _rows(vocab: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randint(4, vocab, (n,), generator=g) for n in LENGTHS]


def test_segment_bounds_come_from_restarting_positions():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0, 0, 1, 2, 3]])
    assert segment_bounds(pos) == [0, 3, 5, 6, 10]


def test_packed_logits_equal_each_row_alone(models):
    padded, packed = models
    rows = _rows(padded.config.vocab_size)
    ids = torch.cat(rows)[None]
    pos = torch.cat([torch.arange(len(r)) for r in rows])[None]
    with torch.no_grad():
        out = packed(input_ids=ids, position_ids=pos).logits[0]
        alone = torch.cat([padded(input_ids=r[None]).logits[0] for r in rows])
    assert torch.allclose(out, alone, atol=1e-5), (out - alone).abs().max()


def test_packed_loss_and_gradients_equal_a_padded_batch_without_a_dense_mask(models, monkeypatch):
    padded, packed = models
    rows = _rows(padded.config.vocab_size)
    longest = max(LENGTHS)
    ids = torch.zeros(len(rows), longest, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    padded.zero_grad()
    ref = padded(input_ids=ids, attention_mask=mask, labels=labels).loss
    ref.backward()
    ref_grads = {n: p.grad.clone() for n, p in padded.named_parameters()}

    seen: list[tuple[int, object]] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append((q.shape[2], attn_mask))
        return sdpa(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    flat = torch.cat(rows)[None]
    pos = torch.cat([torch.arange(len(r)) for r in rows])[None]
    flat_labels = torch.cat([torch.cat([torch.tensor([-100]), r[1:]]) for r in rows])[None]
    packed.zero_grad()
    loss = packed(input_ids=flat, position_ids=pos, labels=flat_labels).loss
    loss.backward()
    assert torch.allclose(loss, ref, atol=1e-6), (loss.item(), ref.item())
    for name, p in packed.named_parameters():
        assert torch.allclose(p.grad, ref_grads[name], atol=1e-5), name
    assert seen and all(m is None for _, m in seen)
    assert max(q for q, _ in seen) == longest  # one call per row, never the whole pack


def test_a_row_longer_than_the_sliding_window_attends_within_its_band_only(tiny_qwen):
    """Mistral-style sliding windows: each packed row equals the row alone with the same window."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_qwen)
    config.use_sliding_window, config.sliding_window, config.max_window_layers = True, 8, 0
    config.layer_types = ["sliding_attention"] * config.num_hidden_layers
    torch.manual_seed(0)
    windowed = AutoModelForCausalLM.from_pretrained(
        tiny_qwen, config=config, attn_implementation="eager"
    ).eval()
    packed = AutoModelForCausalLM.from_pretrained(tiny_qwen, config=config)
    use_packed_attention(packed)
    packed.eval()
    rows = _rows(packed.config.vocab_size)
    ids = torch.cat(rows)[None]
    pos = torch.cat([torch.arange(len(r)) for r in rows])[None]
    with torch.no_grad():
        out = packed(input_ids=ids, position_ids=pos).logits[0]
        alone = torch.cat([windowed(input_ids=r[None]).logits[0] for r in rows])
        unwindowed = AutoModelForCausalLM.from_pretrained(tiny_qwen).eval()(input_ids=rows[3][None]).logits[0]
    assert torch.allclose(out, alone, atol=1e-5), (out - alone).abs().max()
    start = sum(LENGTHS[:3])
    assert not torch.allclose(out[start : start + LENGTHS[3]], unwindowed, atol=1e-3)  # the window mattered
