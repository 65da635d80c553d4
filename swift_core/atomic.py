"""Write files and folders so that a reader never sees them half-written.

Swift's promise is that nothing half-written is left looking finished: a killed run must not
leave an args.json, a results jsonl, a cache entry or a merged model that a later command takes
for complete. Everything is therefore written under a hidden temporary name in the same folder
(so the final rename stays on one file system and is atomic) and renamed onto the final name only
when complete. Temporary names are unique per writer, so two processes writing the same target
(two ranks, two dataset loads) never write into each other's file. Light: standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _public(path: Path, mode: int) -> None:
    """The permissions a plain `open`/`mkdir` would have given: temporary names are created private
    (0600/0700), which would leave a finished model unreadable to a serving user."""
    os.chmod(path, mode & ~_umask())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """`path` holds `data` in full, or keeps what it held before."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _public(Path(tmp), 0o666)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    """Indented UTF-8 JSON; values JSON cannot hold (paths, enums) are written as strings."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str))


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """One JSON object per line."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """A hidden temporary folder beside `final`, renamed onto it when the block ends without an
    error (an empty `final` is replaced; a non-empty one makes the rename fail with OSError), and
    removed when the block raises."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield tmp
        _public(tmp, 0o777)
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
