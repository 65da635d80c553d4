"""Rows -> encoded train/eval datasets, with every data error raised before a model is loaded."""

from __future__ import annotations

import random
from typing import Any

import click

from swift_core.datasets.encode import EncodedRow
from swift_core.errors import SwiftError


class EncodedDataset:
    """A map-style dataset of encoded rows (what the collators take)."""

    def __init__(self, rows: list[dict[str, list[int]]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]

    @property
    def num_tokens(self) -> int:
        return sum(len(r["input_ids"]) for r in self.rows)


def _to_features(encoded: list[EncodedRow]) -> list[dict[str, list[int]]]:
    return [
        {"input_ids": e.input_ids, "labels": e.labels, **({"images": e.images} if e.images else {})}
        for e in encoded
    ]


def encode_for_training(
    template: Any, tokenizer: Any, rows: list[dict[str, Any]], args: Any, mode: str
) -> tuple[list[EncodedRow], int, bool]:
    """Encoded rows (cached) and how many were dropped for length; refuses hopeless data."""
    from swift_core.datasets.cache import encode_rows_cached

    encoded, cached = encode_rows_cached(
        template, tokenizer, rows, mode=mode, max_length=args.max_length, truncation=args.truncation_strategy
    )
    if mode == "pt" and tokenizer.eos_token_id is not None and not template.eos_token:
        # A raw document gets the tokenizer's end-of-text, so the model learns where texts end.
        for e in encoded:
            if e is not None and (args.max_length is None or len(e) < args.max_length):
                e.input_ids.append(tokenizer.eos_token_id)
                e.labels.append(tokenizer.eos_token_id)
    kept = [e for e in encoded if e is not None]
    dropped = len(encoded) - len(kept)
    if not kept:
        raise SwiftError(
            f"--max_length {args.max_length} is shorter than every row of the dataset; raise it, or use "
            "--truncation_strategy left|right to cut rows instead of dropping them"
        )
    if mode == "sft" and not any(e.trained_tokens for e in kept):
        raise SwiftError(
            'no row has an assistant turn to train on (every assistant message has "loss": false, or was cut by '
            "--max_length); swift sft learns from assistant turns. For plain text use swift pt."
        )
    if dropped:
        click.echo(
            f"dropped {dropped} of {len(encoded)} rows longer than --max_length {args.max_length}", err=True
        )
    return kept, dropped, cached


def split_rows(
    encoded: list[EncodedRow], ratio: float, seed: int
) -> tuple[list[EncodedRow], list[EncodedRow]]:
    if not 0 <= ratio < 1:
        raise SwiftError(f"--split_dataset_ratio must be in [0, 1), got {ratio}")
    if ratio == 0:
        return encoded, []
    order = list(range(len(encoded)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(len(encoded) * ratio))
    if n_eval >= len(encoded):
        raise SwiftError(f"--split_dataset_ratio {ratio} leaves no training rows out of {len(encoded)}")
    held = set(order[:n_eval])
    return [e for i, e in enumerate(encoded) if i not in held], [encoded[i] for i in sorted(held)]


def build_datasets(
    train: list[EncodedRow], evals: list[EncodedRow], args: Any
) -> tuple[EncodedDataset, EncodedDataset | None]:
    if args.packing:
        from swift_core.datasets.packing import pack_rows

        if not args.max_length:
            raise SwiftError("--packing needs --max_length (the length of a packed sequence)")
        packed = pack_rows(train, args.max_length)
        train_features = [vars(p) for p in packed]
    else:
        train_features = _to_features(train)
    return EncodedDataset(train_features), (EncodedDataset(_to_features(evals)) if evals else None)
