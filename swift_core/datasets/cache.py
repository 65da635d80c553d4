"""A cache of encoded rows, keyed by a hash of everything that decides the encoding.

The key covers the rows' content, the template (name and the source of its class), the
tokenizer (its full serialized form), the mode, `max_length` and truncation; anything else
changed gives another key. Entries are numpy arrays (no pickle) written to a temporary folder
and renamed into place, so an interrupted write never looks like a finished entry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import Any

from swift_core.atomic import atomic_dir
from swift_core.datasets.encode import EncodedRow

CACHE_VERSION = "1"


def cache_root() -> Path:
    base = os.environ.get("SWIFT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "swift")
    return Path(base) / "encoded"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    extra = json.dumps([tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token], default=str)
    return hashlib.sha256((text + extra).encode()).hexdigest()


def template_fingerprint(template: Any) -> str:
    try:
        source = inspect.getsource(type(template))
    except (OSError, TypeError):
        source = type(template).__qualname__
    return hashlib.sha256(f"{template.name}\0{source}".encode()).hexdigest()


def cache_key(rows: list[dict[str, Any]], template: Any, tokenizer: Any, **settings: Any) -> str:
    h = hashlib.sha256()
    h.update(CACHE_VERSION.encode())
    h.update(template_fingerprint(template).encode())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()[:32]


def save(key: str, encoded: list[EncodedRow | None]) -> Path:
    import numpy as np

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    if final.exists():
        return final
    try:
        with atomic_dir(final) as tmp:
            kept = np.array([r is not None for r in encoded], dtype=bool)
            rows = [r for r in encoded if r is not None]
            lengths = np.array([len(r) for r in rows], dtype=np.int64)
            flat_ids = np.array([t for r in rows for t in r.input_ids], dtype=np.int64)
            flat_labels = np.array([t for r in rows for t in r.labels], dtype=np.int64)
            for name, arr in (
                ("kept", kept),
                ("lengths", lengths),
                ("ids", flat_ids),
                ("labels", flat_labels),
            ):
                np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
    except OSError:
        if not final.exists():  # else another process wrote the same entry first
            raise
    return final


def load(key: str) -> list[EncodedRow | None] | None:
    import numpy as np

    folder = cache_root() / key
    if not folder.is_dir():
        return None
    try:
        kept = np.load(folder / "kept.npy", allow_pickle=False)
        lengths = np.load(folder / "lengths.npy", allow_pickle=False)
        ids = np.load(folder / "ids.npy", allow_pickle=False).tolist()
        labels = np.load(folder / "labels.npy", allow_pickle=False).tolist()
    except (OSError, ValueError):
        return None
    out: list[EncodedRow | None] = []
    pos = 0
    it = iter(lengths.tolist())
    for k in kept.tolist():
        if not k:
            out.append(None)
            continue
        n = next(it)
        out.append(EncodedRow(ids[pos : pos + n], labels[pos : pos + n]))
        pos += n
    return out


def encode_rows_cached(
    template: Any, tokenizer: Any, rows: list[dict[str, Any]], **settings: Any
) -> tuple[list[EncodedRow | None], bool]:
    """Encoded rows and whether they came from the cache."""
    from swift_core.datasets.encode import encode_rows

    key = cache_key(rows, template, tokenizer, **settings)
    hit = load(key)
    if hit is not None:
        # The cache holds ids only; a row's images (part of the key) come back from the row.
        for row, encoded_row in zip(rows, hit):
            if encoded_row is not None and row.get("images"):
                encoded_row.images = list(row["images"])
        return hit, True
    encoded = encode_rows(template, tokenizer, rows, **settings)
    save(key, encoded)
    return encoded, False
