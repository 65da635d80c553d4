"""Token ids plus images -> the inputs a vision-language model's forward takes.

The template writes one `<|image_pad|>` per image; the model needs one per visual token of that
image (its resized area / (patch * merge)^2), the patches (`pixel_values`), each image's grid
(`image_grid_thw`) and, in transformers 5, `mm_token_type_ids` (1 where a token is an image's) for
its 3-D rotary positions. Widening happens after tokenizing, so the same text encoding (and its
cache) serves text and image rows, and training and generation widen the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from swift_core.datasets.encode import IGNORE_INDEX
from swift_core.errors import SwiftError
from swift_core.multimodal.media import open_image
from swift_core.multimodal.processor import VisionBatch, VisionProcessor


def expand_image_tokens(
    input_ids: Sequence[int], labels: Sequence[int] | None, counts: Sequence[int], token_id: int
) -> tuple[list[int], list[int] | None]:
    """Each `token_id` of `input_ids` repeated `counts[i]` times (its labels ignored)."""
    found = sum(1 for t in input_ids if t == token_id)
    if found != len(counts):
        raise SwiftError(
            f"the prompt has {found} image placeholder(s) but {len(counts)} image(s) were given "
            "(was it cut by --max_length?)"
        )
    ids: list[int] = []
    out_labels: list[int] | None = [] if labels is not None else None
    k = 0
    for i, token in enumerate(input_ids):
        if token == token_id:
            ids += [token_id] * counts[k]
            if out_labels is not None:
                out_labels += [IGNORE_INDEX] * counts[k]
            k += 1
        else:
            ids.append(token)
            if out_labels is not None and labels is not None:
                out_labels.append(labels[i])
    return ids, out_labels


def vision_inputs(batch: VisionBatch | None, input_ids: Any, token_id: int) -> dict[str, Any]:
    """The image tensors that go next to a batch's `input_ids` (a tensor)."""
    out = {"mm_token_type_ids": (input_ids == token_id).long()}
    if batch is not None:
        out["pixel_values"] = batch.pixel_values
        out["image_grid_thw"] = batch.image_grid_thw
    return out


class VisionCollator:
    """A text collator (`PadCollator`, `PaddingFreeCollator`) whose rows may carry `images`."""

    def __init__(
        self,
        text_collator: Callable[[Sequence[dict[str, Any]]], dict[str, Any]],
        processor: VisionProcessor,
        load: Callable[[Any], Any] = open_image,
    ):
        self.text_collator = text_collator
        self.processor = processor
        self.load = load

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        images = [self.load(src) for f in features for src in f.get("images") or ()]
        batch = self.processor(images) if images else None
        rows = []
        k = 0
        for f in features:
            n = len(f.get("images") or ())
            counts = batch.token_counts[k : k + n] if batch is not None else []
            k += n
            ids, labels = expand_image_tokens(
                f["input_ids"], f.get("labels", f["input_ids"]), counts, self.processor.image_token_id
            )
            rows.append(
                {**{key: v for key, v in f.items() if key != "images"}, "input_ids": ids, "labels": labels}
            )
        out = self.text_collator(rows)
        out.update(vision_inputs(batch, out["input_ids"], self.processor.image_token_id))
        return out
