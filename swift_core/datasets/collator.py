"""Batch collators for the trainers: padded batches, or padding-free (one flat row per batch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from swift_core.datasets.encode import IGNORE_INDEX


class PadCollator:
    """Pads `input_ids` with the pad id and `labels` with -100; builds the attention mask."""

    def __init__(self, pad_token_id: int, padding_side: str = "right", pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        ids, labels, mask = [], [], []
        for f in features:
            n = len(f["input_ids"])
            pad = longest - n
            row_labels = list(f.get("labels", f["input_ids"]))
            if self.padding_side == "left":
                ids.append([self.pad_token_id] * pad + list(f["input_ids"]))
                labels.append([IGNORE_INDEX] * pad + row_labels)
                mask.append([0] * pad + [1] * n)
            else:
                ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
                labels.append(row_labels + [IGNORE_INDEX] * pad)
                mask.append([1] * n + [0] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }


class PaddingFreeCollator:
    """Concatenates the batch into one row with restarting `position_ids` and no padding.

    Packed rows (with their own `position_ids`) are concatenated as they are. transformers
    derives the block-diagonal attention from `position_ids` only when the forward runs without
    a KV cache (`use_cache=False`, as training does).
    """

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for f in features:
            n = len(f["input_ids"])
            row_labels = list(f.get("labels", f["input_ids"]))
            if "position_ids" in f:
                positions += list(f["position_ids"])
                labels += row_labels
            else:
                positions += list(range(n))
                labels += [IGNORE_INDEX, *row_labels[1:]]
            ids += list(f["input_ids"])
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
        }
