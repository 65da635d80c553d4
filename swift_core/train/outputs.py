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
import re
from pathlib import Path
from typing import Any

from swift_core.atomic import write_json_atomic
from swift_core.models.checkpoint import MARKER, is_complete

_RUN = re.compile(r"^v(\d+)-\d{8}-\d{6}$")
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def new_run_dir(output_dir: str, add_version: bool = True) -> Path:
    """OUTPUT_DIR/vN-YYYYMMDD-HHMMSS with N one more than the highest existing run."""
    root = Path(output_dir)
    if not add_version:
        root.mkdir(parents=True, exist_ok=True)
        return root
    root.mkdir(parents=True, exist_ok=True)
    versions = [int(m.group(1)) for p in root.iterdir() if (m := _RUN.match(p.name))]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run = root / f"v{max(versions, default=-1) + 1}-{stamp}"
    run.mkdir()
    return run


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
