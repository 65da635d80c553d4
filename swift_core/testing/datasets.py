"""Tiny chat and preference datasets written as JSON lines, for `swift sft` / `swift rlhf` tests.

The rows come from the demo's synthetic tasks (`swift_core.demo.tasks`: count the words of a
list, is there an animal in it, ...), in the formats users bring: `{"messages": [...]}` for chat,
plus `"rejected_response"` for preference pairs (KTO reads the same pairs as unpaired examples).
Held-out rows (`n_eval`) use word lists the training rows never contain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DatasetFiles:
    """The files written: `train` always, `eval` when held-out rows were asked for."""

    train: Path
    eval: Path | None = None


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """One JSON object per line; creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _write(
    folder: str | Path, stem: str, train: list[dict[str, Any]], held: list[dict[str, Any]]
) -> DatasetFiles:
    folder = Path(folder)
    eval_path = write_jsonl(folder / f"{stem}-eval.jsonl", held) if held else None
    return DatasetFiles(write_jsonl(folder / f"{stem}.jsonl", train), eval_path)


def chat_rows(
    n: int = 32, *, n_eval: int = 0, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`n` training and `n_eval` held-out chat rows (`{"messages": [user, assistant]}`)."""
    from swift_core.demo.tasks import make_split

    train, held = make_split(n, n_eval, seed=seed)
    return [{"messages": r["messages"]} for r in train], [{"messages": r["messages"]} for r in held]


def preference_rows(
    n: int = 32, *, n_eval: int = 0, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """About `n` training and `n_eval` held-out preference pairs (`messages` with the chosen answer
    last, `rejected_response`); answers are balanced per task, so a few rows may be dropped."""
    from swift_core.demo.tasks import preference_split

    # preference_split balances both halves and needs at least one held-out row of each task.
    train, held = preference_split(n, max(n_eval, 3), seed=seed)
    return train, held[:n_eval]


def write_chat_dataset(folder: str | Path, n: int = 32, *, n_eval: int = 0, seed: int = 0) -> DatasetFiles:
    """`folder/chat.jsonl` (and `chat-eval.jsonl` when `n_eval` > 0)."""
    return _write(folder, "chat", *chat_rows(n, n_eval=n_eval, seed=seed))


def write_preference_dataset(
    folder: str | Path, n: int = 32, *, n_eval: int = 0, seed: int = 0
) -> DatasetFiles:
    """`folder/preference.jsonl` (and `preference-eval.jsonl` when `n_eval` > 0)."""
    return _write(folder, "preference", *preference_rows(n, n_eval=n_eval, seed=seed))


def write_pretraining_dataset(folder: str | Path, n: int = 32, *, seed: int = 0) -> DatasetFiles:
    """`folder/pretrain.jsonl` for `swift pt`: `{"text": ...}` documents and two-turn chats."""
    from swift_core.demo.tasks import pretraining_rows

    return _write(folder, "pretrain", pretraining_rows(n, seed=seed), [])
