"""Reading local data files (jsonl, json, csv, parquet) row by row, with the line of each row.

Only the standard library, except parquet (pyarrow, imported when one is read): reading a local copy
of a benchmark never imports `datasets` and never touches the network.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def data_files(path: Path, split: str = "") -> list[Path]:
    """The files of a dataset path: the file itself, or the supported files of a folder (of its
    `split` subfolder when it has one, as hub snapshots do), sorted by name."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SwiftError(f"{path}: no such file or folder")
    folder = path / split if split and (path / split).is_dir() else path
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files and folder != path:
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise SwiftError(f"{path}: no {', '.join(SUFFIXES)} files in it")
    return files


def sha256_of(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_rows(path: Path, *, csv_header: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, row) of one file; a row that is not an object names its line."""
    suffix = path.suffix
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise SwiftError(f"{path}, line {line_no}: not valid JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise SwiftError(
                        f"{path}, line {line_no}: expected a JSON object, got {type(row).__name__}"
                    )
                yield line_no, row
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SwiftError(f"{path}: not valid JSON: {exc}") from None
        if isinstance(data, dict):
            data = next(
                (data[k] for k in ("data", "rows", "test", "train") if isinstance(data.get(k), list)), None
            )
        if not isinstance(data, list):
            raise SwiftError(f"{path}: expected a JSON list of objects (or an object with a 'data' list)")
        for i, row in enumerate(data, 1):
            if not isinstance(row, dict):
                raise SwiftError(f"{path}, row {i}: expected a JSON object, got {type(row).__name__}")
            yield i, row
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            if csv_header:
                for i, row in enumerate(csv.DictReader(f), 2):
                    yield i, dict(row)
            else:
                for i, cells in enumerate(csv.reader(f), 1):
                    yield i, {str(k): v for k, v in enumerate(cells)}
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield i, row
    else:
        raise SwiftError(f"{path}: unsupported file type (use {', '.join(SUFFIXES)})")
