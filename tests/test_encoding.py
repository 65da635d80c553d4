"""Encoding, packing, padding-free collation and the encoded-row cache on a tiny model."""

from __future__ import annotations

import pytest
import torch

from swift_core.datasets import cache
from swift_core.datasets.collator import PadCollator, PaddingFreeCollator
from swift_core.datasets.encode import IGNORE_INDEX, encode_rows
from swift_core.datasets.packing import pack_rows
from swift_core.models.corpus import generate_corpus
from swift_core.templates.registry import get_template


def _rows(n, seed=0):
    corpus = generate_corpus(2 * n, seed=seed)
    return [
        {
            "messages": [
                {"role": "user", "content": corpus[2 * i]},
                {"role": "assistant", "content": corpus[2 * i + 1]},
            ]
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_qwen):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_qwen).eval(), AutoTokenizer.from_pretrained(tiny_qwen)


def test_truncation_strategies(model_and_tokenizer):
    _, tok = model_and_tokenizer
    template = get_template("qwen2_5")
    row = _rows(1)[0]
    full = encode_rows(template, tok, [row])[0]
    right = encode_rows(template, tok, [row], max_length=10, truncation="right")[0]
    left = encode_rows(template, tok, [row], max_length=10, truncation="left")[0]
    assert right.input_ids == full.input_ids[:10] and left.input_ids == full.input_ids[-10:]
    assert left.labels == full.labels[-10:]
    assert encode_rows(template, tok, [row], max_length=10, truncation="delete") == [None]


def test_pt_mode_trains_on_everything(model_and_tokenizer):
    _, tok = model_and_tokenizer
    encoded = encode_rows(get_template("qwen2_5"), tok, _rows(1), mode="pt")[0]
    assert encoded.labels == encoded.input_ids


def test_packing_keeps_every_token_and_restarts_positions(model_and_tokenizer):
    _, tok = model_and_tokenizer
    encoded = encode_rows(get_template("qwen2_5"), tok, _rows(20))
    packed = pack_rows(encoded, max_length=256)
    assert len(packed) < len(encoded)
    assert all(len(p) <= 256 for p in packed)
    assert sum(len(p) for p in packed) == sum(len(e) for e in encoded)
    starts = sum(p.position_ids.count(0) for p in packed)
    assert starts == len(encoded)
    for p in packed:
        for i, pos in enumerate(p.position_ids):
            if pos == 0:
                assert p.labels[i] == IGNORE_INDEX
    with pytest.raises(ValueError, match="exceeds max_length"):
        pack_rows(encoded, max_length=5)


def test_padding_free_loss_equals_padded_loss(model_and_tokenizer):
    """Block-diagonal attention from position_ids: no row sees another, so the losses agree."""
    model, tok = model_and_tokenizer
    encoded = encode_rows(get_template("qwen2_5"), tok, _rows(4))
    features = [{"input_ids": e.input_ids, "labels": e.labels} for e in encoded]
    with torch.no_grad():
        padded = model(**PadCollator(tok.pad_token_id)(features)).loss
        # training runs without a KV cache; transformers only reads packed position_ids then
        flat = model(**PaddingFreeCollator()(features), use_cache=False).loss
        packed = pack_rows(encoded, max_length=4096)
        assert len(packed) == 1
        packed_loss = model(**PaddingFreeCollator()([vars(packed[0])]), use_cache=False).loss
    assert torch.allclose(padded, flat, atol=1e-5), (padded, flat)
    assert torch.allclose(padded, packed_loss, atol=1e-5)
    # and attention across rows would change it: a plain concatenation without position_ids differs
    concat = {k: v for k, v in PaddingFreeCollator()(features).items() if k != "position_ids"}
    with torch.no_grad():
        leaky = model(**concat, use_cache=False).loss
    assert not torch.allclose(padded, leaky, atol=1e-4)


def test_left_padding(model_and_tokenizer):
    _, tok = model_and_tokenizer
    batch = PadCollator(tok.pad_token_id, padding_side="left")([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [tok.pad_token_id] * 2 + [8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["labels"].tolist()[1] == [IGNORE_INDEX, IGNORE_INDEX, 8]


def test_cache_hits_on_same_input_and_misses_on_any_change(model_and_tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("SWIFT_CACHE", str(tmp_path))
    _, tok = model_and_tokenizer
    template = get_template("qwen2_5")
    rows = _rows(30)
    first, hit = cache.encode_rows_cached(template, tok, rows, max_length=64, truncation="delete")
    assert not hit
    second, hit = cache.encode_rows_cached(template, tok, rows, max_length=64, truncation="delete")
    assert hit and second == first and None in second
    _, hit = cache.encode_rows_cached(template, tok, rows, max_length=65, truncation="delete")
    assert not hit
    changed = [dict(r) for r in rows]
    changed[3] = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}
    _, hit = cache.encode_rows_cached(template, tok, changed, max_length=64, truncation="delete")
    assert not hit
    # a half-written entry (a leftover temporary folder) is never read as a hit
    key = cache.cache_key(_rows(2), template, tok, max_length=None)
    (cache.cache_root() / f".{key}-tmp").mkdir()
    assert cache.load(key) is None
