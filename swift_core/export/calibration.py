"""Calibration and held-out rows for quantized export, rendered by the model's own chat template.

A quantizer calibrates on what the model will be served: the same template that training and
serving put in front of it, so the activation statistics GPTQ/AWQ fit are the real ones. The rows
used to measure perplexity before and after are held out from calibration when there are enough,
so the reported delta is not measured on the data the quantizer fitted.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from swift_core.errors import SwiftError


@dataclass
class ExportRows:
    calibration: list[list[int]] = field(default_factory=list)
    evaluation: list[list[int]] = field(default_factory=list)
    prompt: list[dict[str, Any]] | None = None  # messages for the greedy generation check
    held_out: bool = True  # False: too few rows, evaluation reuses calibration rows

    def fingerprint(self) -> str:
        """sha256 of the calibration token ids (the manifest's calibration data hash)."""
        digest = hashlib.sha256(json.dumps(self.calibration, separators=(",", ":")).encode())
        return digest.hexdigest()


def _prompt_of(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    messages = list(row.get("messages") or [])
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    return messages[: last_user + 1] if last_user is not None else None


def export_rows(
    specs: list[str],
    template: Any,
    tokenizer: Any,
    *,
    n_samples: int,
    n_eval: int,
    seqlen: int,
    seed: int,
    skip_bad_rows: bool = False,
    manager: Any = None,
) -> ExportRows:
    """Rows of `specs` (any dataset the loader reads), encoded whole and cut to `seqlen` tokens."""
    from swift_core.datasets.encode import encode_rows
    from swift_core.datasets.loader import load_rows

    if not specs:
        return ExportRows()
    loaded = load_rows(specs, skip_bad_rows=skip_bad_rows, seed=seed, manager=manager, answer_optional=True)
    rows = list(loaded.rows)
    if not rows:
        raise SwiftError(f"--dataset {' '.join(specs)}: no rows to calibrate on")
    random.Random(seed).shuffle(rows)
    encoded = [
        e.input_ids
        for e in encode_rows(template, tokenizer, rows, mode="sft", max_length=seqlen, truncation="right")
        if e is not None and len(e.input_ids) >= 2
    ]
    if not encoded:
        raise SwiftError(f"--dataset {' '.join(specs)}: every row encodes to fewer than 2 tokens")
    # With too few rows to hold any out, perplexity is measured on the calibration rows themselves.
    held_out = len(encoded) > n_eval
    evaluation = encoded[:n_eval]
    calibration = encoded[n_eval : n_eval + n_samples] if held_out else encoded[:n_samples]
    prompt = next((p for p in map(_prompt_of, rows) if p), None)
    return ExportRows(calibration, evaluation, prompt, held_out)
