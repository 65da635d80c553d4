"""Tiny models and tokenizers for tests, built on the spot (no hub).

Thin wrappers over `swift_core.models.tiny` and `swift_core.models.corpus` (the code that builds
them lives there, shared with the benchmarks and the demo); what the wrappers add is the test
defaults: a manager with only the built-in plugins, so an installed plugin or a policy cannot
change the model a test gets, and fixed token batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULT_TEXTS = (
    "The quick brown fox jumps over the lazy dog near the river bank today.",
    "Swift trains small models quickly and saves adapters that reload exactly.",
)


def tiny_model(
    out_dir: str | Path,
    family: str = "qwen2_5",
    *,
    model_type: str | None = None,
    template: str | None = None,
    size: str = "tiny",
    vocab_size: int = 2000,
    seed: int = 0,
    manager: Any = None,
) -> Path:
    """Write a tiny random model of `family` (hidden 64, 2 layers at size "tiny") with a tokenizer
    trained on the synthetic corpus to `out_dir`; returns the folder (a Hugging Face model folder)."""
    from swift_core.models.tiny import build_tiny_model
    from swift_core.testing.managers import builtin_manager

    return build_tiny_model(
        out_dir,
        family,
        size=size,
        model_type=model_type,
        template=template,
        vocab_size=vocab_size,
        seed=seed,
        manager=manager if manager is not None else builtin_manager(),
    )


def tiny_tokenizer(
    template: str = "qwen2_5", *, vocab_size: int = 600, seed: int = 0, manager: Any = None
) -> Any:
    """A byte-level BPE tokenizer with `template`'s special tokens, trained on the spot (~0.2 s)."""
    from swift_core.models.tiny import train_tokenizer
    from swift_core.templates.registry import get_template
    from swift_core.testing.managers import builtin_manager

    tmpl = get_template(template, manager if manager is not None else builtin_manager())
    return train_tokenizer(tmpl, vocab_size=vocab_size, seed=seed)


def token_batch(model_dir: str | Path, texts: tuple[str, ...] = DEFAULT_TEXTS, max_length: int = 16) -> Any:
    """`texts` tokenized by the model folder's tokenizer: input ids of shape (len(texts), max_length)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer(
        list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
    )
    return encoded["input_ids"]


def random_token_batch(vocab_size: int, batch: int = 2, length: int = 12, seed: int = 0) -> Any:
    """Random input ids (no tokenizer needed): enough to compare logits of two models."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, length), generator=generator)


def load_model(model_dir: str | Path, **kwargs: Any) -> Any:
    """The model folder as an `AutoModelForCausalLM` in float32, eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs.setdefault("dtype", torch.float32)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.eval()
    return model
