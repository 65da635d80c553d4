"""Answers about images from a loaded vision-language model: `swift infer` and the evaluations of
the tests use this, with the same template, resize and placeholder widening as training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from swift_core.datasets.collator import PadCollator
from swift_core.datasets.encode import encode_prompt
from swift_core.multimodal.inputs import VisionCollator
from swift_core.multimodal.media import open_image
from swift_core.multimodal.processor import VisionProcessor
from swift_core.multimodal.setup import with_image_tags


def generate_batch(
    model: Any,
    tokenizer: Any,
    template: Any,
    processor: VisionProcessor,
    rows: Sequence[dict[str, Any]],
    *,
    max_new_tokens: int = 32,
    load: Any = open_image,
) -> list[str]:
    """Greedy answers to `rows` (each `{"messages": [...], "images": [...]}`, ending with a user
    turn), batched with left padding."""
    import torch

    rows = [with_image_tags(dict(r)) for r in rows]
    features = [
        {
            "input_ids": encode_prompt(template, tokenizer, list(r["messages"])),
            "images": list(r.get("images") or []),
        }
        for r in rows
    ]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = VisionCollator(PadCollator(pad, padding_side="left"), processor, load=load)(features)
    batch.pop("labels", None)
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    stops = [tokenizer.convert_tokens_to_ids(t) for t in template.stop if t in tokenizer.get_vocab()]
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=stops or tokenizer.eos_token_id,
            pad_token_id=pad,
        )
    start = batch["input_ids"].shape[1]
    return [tokenizer.decode(row[start:], skip_special_tokens=True).strip() for row in out]
