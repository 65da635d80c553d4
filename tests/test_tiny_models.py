"""The tiny-model helper: every built-in text family's real architecture, scaled down, with a
tokenizer trained on the spot; saved in the Hugging Face layout and loadable offline."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from swift_core.errors import SwiftError
from swift_core.models.resolve import resolve_model
from swift_core.models.tiny import build_tiny_model
from swift_core.plugins import PluginManager, builtin_sources
from swift_core.policy import Policy
from swift_core.templates.registry import get_template, official_jinja

MANAGER = PluginManager(Policy(), builtin_sources())
TEXT_FAMILIES = [
    f.name for f in MANAGER.registry("model_families") if not f.remote_code and f.modality == "text"
]


def test_most_text_families_are_covered():
    assert len(TEXT_FAMILIES) >= 20


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_tiny_model_of_each_family(family, tmp_path):
    fam = MANAGER.get("model_families", family)
    folder = build_tiny_model(tmp_path / family, family, vocab_size=800, manager=MANAGER)
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__ in fam.architectures
    template = get_template(fam.template, MANAGER)
    for token in template.all_special_tokens():
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    assert tokenizer.chat_template == official_jinja(template)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    ids = tokenizer("The quick dog sees 42 cats.", return_tensors="pt")
    with torch.no_grad():
        out = model(**ids)
    assert out.logits.shape[-1] == model.config.vocab_size
    # the folder resolves back to its family from config.json and the tokenizer's chat template
    resolved = resolve_model(str(folder), manager=MANAGER)
    assert resolved.family.template == fam.template, resolved.how


def test_realistic_vocabulary_and_remote_code_families_are_refused(tmp_path):
    folder = build_tiny_model(tmp_path / "q", "qwen2_5", manager=MANAGER)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert 1500 <= len(tokenizer) <= 2100
    remote = next(f.name for f in MANAGER.registry("model_families") if f.remote_code)
    with pytest.raises(SwiftError, match="remote code"):
        build_tiny_model(tmp_path / "r", remote, manager=MANAGER)
