"""Rows -> token ids and labels through a chat template, batched and cached.

Segments of many rows go to the tokenizer in one batched call (the Rust tokenizer does the work
in parallel), which is what makes this faster than a loop of `apply_chat_template` + tokenize.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from swift_core.errors import SwiftError
from swift_core.templates.base import ChatTemplate, Segment

IGNORE_INDEX = -100
Truncation = Literal["delete", "left", "right"]
Mode = Literal["sft", "pt"]


@dataclass
class EncodedRow:
    input_ids: list[int]
    labels: list[int]
    # The row's images (paths or URLs), one `<|image_pad|>`-style placeholder each in input_ids:
    # a vision collator widens them once the images are read (swift_core.multimodal.inputs).
    images: list[str] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def segments_of(template: ChatTemplate, row: dict[str, Any], mode: Mode) -> list[Segment]:
    segments = template.render(row["messages"], tools=row.get("tools"), for_training=True)
    if mode == "pt":
        return [Segment(s.text, True) for s in segments]
    return segments


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def encode_rows(
    template: ChatTemplate,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    *,
    mode: Mode = "sft",
    max_length: int | None = None,
    truncation: Truncation = "right",
    batch_rows: int = 512,
) -> list[EncodedRow | None]:
    """Encode rows; a row longer than `max_length` under `truncation="delete"` becomes None."""
    out: list[EncodedRow | None] = []
    for chunk in _batches(rows, batch_rows):
        per_row = [segments_of(template, row, mode) for row in chunk]
        flat = [s.text for segs in per_row for s in segs]
        ids_flat = tokenize_batch(tokenizer, flat)
        k = 0
        for row, segs in zip(chunk, per_row):
            input_ids: list[int] = []
            labels: list[int] = []
            for seg in segs:
                ids = ids_flat[k]
                k += 1
                input_ids += ids
                labels += ids if seg.trainable else [IGNORE_INDEX] * len(ids)
            out.append(
                _truncate(EncodedRow(input_ids, labels, row.get("images") or None), max_length, truncation)
            )
    return out


def tokenize_batch(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Ids of each text, no special tokens added: straight to the Rust tokenizer when there is one.

    `encode_batch_fast` skips computing character offsets, which transformers' `__call__` always
    asks for; on short segments that is half the time.
    """
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        return [e.ids for e in encode(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _truncate(row: EncodedRow, max_length: int | None, truncation: Truncation) -> EncodedRow | None:
    if max_length is None or len(row) <= max_length:
        return row
    if truncation == "delete":
        return None
    if truncation == "left":
        return EncodedRow(row.input_ids[-max_length:], row.labels[-max_length:], row.images)
    if truncation == "right":
        return EncodedRow(row.input_ids[:max_length], row.labels[:max_length], row.images)
    raise SwiftError(f"unknown truncation strategy {truncation!r}; use delete, left or right")


def encode_prompt(
    template: ChatTemplate, tokenizer: Any, messages: list[dict[str, Any]], **kwargs: Any
) -> list[int]:
    """Ids of the generation prompt: what an engine feeds the model."""
    segments = template.render(messages, add_generation_prompt=True, **kwargs)
    ids: list[int] = []
    for seg_ids in tokenize_batch(tokenizer, [seg.text for seg in segments]):
        ids += seg_ids
    return ids
