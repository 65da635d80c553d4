"""Batch inference that survives an interruption: answered rows are kept as they come.

A long `swift infer --val_dataset` run stopped by Ctrl-C, a crash or a lost machine must not lose
the rows it already answered. Each answered row is appended (and flushed) to a hidden
`.<results>.partial` file next to the results; the results file itself is written only when every
row is done, so a half-finished run never looks finished. Run the same command again (same
`--result_path`) and the rows already answered are taken from the partial file, the rest are
generated. The partial file starts with a fingerprint of everything that decides the answers (the
rows, model, adapters, template, engine and generation settings): when any of them changed, the old
partial file is not reused. Rows that failed are not kept: a resumed run tries them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, TextIO

# InferArguments fields that change what a row's answer is (the rest: paths, ports, logging).
ANSWER_FIELDS = (
    "model",
    "adapters",
    "model_type",
    "template",
    "engine",
    "engine_kwargs",
    "torch_dtype",
    "max_model_len",
    "max_new_tokens",
    "seed",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "stop",
    "system",
)


def fingerprint(args: Any, rows: list[dict[str, Any]]) -> str:
    settings = {name: getattr(args, name, None) for name in ANSWER_FIELDS}
    text = json.dumps({"settings": settings, "rows": rows}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def partial_path(result_path: Path) -> Path:
    return result_path.with_name(f".{result_path.name}.partial")


class PartialResults:
    """The answered rows of one batch run, kept on disk as they come."""

    def __init__(self, result_path: Path, key: str, total: int):
        self.path = partial_path(result_path)
        self.key = key
        self.total = total
        self.done: dict[int, dict[str, Any]] = {}
        self.stale = False  # a partial file of different inputs/settings was found (and is replaced)
        self._file: TextIO | None = None
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except ValueError:
            header = {}
        if header.get("fingerprint") != self.key or header.get("rows") != self.total:
            self.stale = True
            return
        for line in lines[1:]:
            try:  # the last line may be cut short by the interruption
                entry = json.loads(line)
                index, record = int(entry["index"]), entry["record"]
            except (ValueError, KeyError, TypeError):
                continue
            if 0 <= index < self.total and isinstance(record, dict):
                self.done[index] = record

    def __enter__(self) -> PartialResults:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Rewritten whole: keeps what was answered, drops a last line cut short, replaces a stale file.
        self._file = self.path.open("w", encoding="utf-8")
        self._write({"fingerprint": self.key, "rows": self.total})
        for index in sorted(self.done):
            self._write({"index": index, "record": self.done[index]})
        return self

    def _write(self, entry: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()

    def add(self, index: int, record: dict[str, Any]) -> None:
        """Keep an answered row (a failed one is not kept: a resumed run tries it again)."""
        if "error" in record:
            return
        self.done[index] = record
        self._write({"index": index, "record": record})

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """The results file is complete: the partial file is not needed any more."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
