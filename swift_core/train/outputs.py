"""Run folders, args.json, and checkpoints that are either complete or recognisably not.

transformers' Trainer writes a checkpoint in place, file by file. Swift writes a marker file
(`swift_checkpoint.json`) only after everything of the checkpoint (weights, optimizer, scheduler,
RNG, trainer state, tokenizer, args.json) is on disk. A folder without the marker is a
checkpoint a killed run left half-written: `--resume_from_checkpoint auto`, `swift infer
--adapters` and `swift export` never take it for a finished one. This module writes; the
names of the files and their reading are `swift_core.models.checkpoint`'s.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
from pathlib import Path
from typing import Any

from swift_core.atomic import write_json_atomic
from swift_core.errors import SwiftError
from swift_core.models.checkpoint import MARKER, is_complete

_RUN = re.compile(r"^v(\d+)-\d{8}-\d{6}$")
_CKPT = re.compile(r"^checkpoint-(\d+)$")


_CAUSES = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
}
# OS errors that are the output folder's fault, not a bug: reported as one line, exit 2.
OUTPUT_ERRNOS = frozenset({*_CAUSES, errno.ENOTDIR, errno.EEXIST, errno.EISDIR})


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` (itself included) when it is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def output_dir_error(output_dir: str | Path, exc: OSError | None = None) -> SwiftError:
    """One line naming the path and the cause of a fault writing under --output_dir."""
    root = Path(output_dir)
    blocker = _file_above(root)
    if blocker is not None:
        what = "is a file" if blocker == root else f"is under {blocker}, which is a file"
        return SwiftError(f"--output_dir {root} {what}, not a folder: pass a folder")
    path = (exc.filename if exc is not None else None) or root
    cause = _CAUSES.get(exc.errno, exc.strerror or str(exc)) if exc is not None else "not writable"
    return SwiftError(f"--output_dir {root}: cannot write {path}: {cause}")


def describe_write_error(exc: OSError) -> str | None:
    """One line for an OS error writing a named file that is the machine's state (disk full,
    read-only, forbidden), or None for anything else (a bug keeps its traceback)."""
    if exc.errno not in _CAUSES or not exc.filename:
        return None
    return f"cannot write {exc.filename}: {_CAUSES[exc.errno]}"


def check_output_dir(output_dir: str | Path) -> None:
    """Refuse, before anything loads, an --output_dir that is a file, under one, or not writable
    (creates nothing: a run refused for its data leaves no folder behind)."""
    root = Path(output_dir)
    if _file_above(root) is not None:
        raise output_dir_error(root)
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = errno.EROFS if _read_only(existing) else errno.EACCES
        raise output_dir_error(root, OSError(reason, os.strerror(reason), str(existing)))


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def new_run_dir(output_dir: str, add_version: bool = True) -> Path:
    """OUTPUT_DIR/vN-YYYYMMDD-HHMMSS with N one more than the highest existing run."""
    root = Path(output_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not add_version:
            return root
        versions = [int(m.group(1)) for p in root.iterdir() if (m := _RUN.match(p.name))]
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run = root / f"v{max(versions, default=-1) + 1}-{stamp}"
        run.mkdir()
    except OSError as exc:
        raise output_dir_error(root, exc) from None
    return run


def finished_message(checkpoint: Path, args: Any) -> str | None:
    """Why resuming `checkpoint` has nothing left to train (it is at --max_steps, or has done
    --num_train_epochs), or None. transformers' Trainer would run one more step past the end."""
    from swift_core.models.checkpoint import read_json_object

    try:
        state = read_json_object(checkpoint / "trainer_state.json")
    except SwiftError:
        return None
    step = int(state.get("global_step") or 0)
    epoch = float(state.get("epoch") or 0.0)
    if args.max_steps > 0:
        if step >= args.max_steps:
            return (
                f"{checkpoint} is already at step {step} of --max_steps {args.max_steps}: nothing to train. "
                "Raise --max_steps to train further, or drop --resume_from_checkpoint to start a new run."
            )
        return None
    if args.num_train_epochs > 0 and epoch >= args.num_train_epochs - 1e-6:
        return (
            f"{checkpoint} has already trained {epoch:g} epoch(s) of --num_train_epochs "
            f"{args.num_train_epochs:g}: nothing to train. Raise --num_train_epochs to train further, or "
            "drop --resume_from_checkpoint to start a new run."
        )
    return None


def mark_complete(checkpoint: Path, info: dict[str, Any]) -> None:
    write_json_atomic(checkpoint / MARKER, {"complete": True, **info})


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint folders of a run, by step."""
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if p.is_dir() and (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_complete_checkpoint(output_dir: str) -> Path | None:
    """The newest complete checkpoint under OUTPUT_DIR (in its run folders, or directly in it)."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    runs = sorted(
        (p for p in root.iterdir() if p.is_dir() and _RUN.match(p.name)),
        key=lambda p: int(_RUN.match(p.name).group(1)),  # type: ignore[union-attr]
        reverse=True,
    )
    for run in [*runs, root]:
        done = [c for c in checkpoints(run) if is_complete(c)]
        if done:
            return done[-1]
    return None
