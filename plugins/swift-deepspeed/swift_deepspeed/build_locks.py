"""Stale locks in torch's extension build cache, cleared before DeepSpeed builds or loads its ops.

DeepSpeed compiles its CPU ops (the shared-memory collective, CPU Adam) with
`torch.utils.cpp_extension`, which guards each build folder with a `lock` file: created with
O_EXCL, held open while the build runs, removed when it ends. A process killed in that window
(a SIGKILL, a job's time limit, a machine stopped mid-run) leaves the file behind, and every later
run then waits on it forever without a word: torch's `FileBaton.wait` polls for the file to go.
That is a hang before step 1 that the user cannot tell from a slow build.

Because the builder keeps the lock open, a lock that no process on this machine holds open is
stale; Linux says who holds what in /proc/<pid>/fd. We remove only such locks, and only while
holding an flock of our own on the cache root, so two Swift processes (the ranks of one run)
never both decide about the same lock: one removes it, the other then sees the new holder's
open file and leaves it. Processes whose fds we may not read (other users') are not counted:
a lock in this user's cache is this user's. Without /proc nothing is removed.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

PROC = Path("/proc")
GUARD_NAME = ".swift-lock-check"


def build_roots() -> list[Path]:
    """The folders whose subfolders are torch extension build folders (as torch picks them)."""
    custom = os.environ.get("TORCH_EXTENSIONS_DIR")
    if custom:
        return [Path(custom)]
    from torch.utils.cpp_extension import get_default_build_root

    # torch adds a "<python>_<accelerator>" level under its default root.
    root = Path(get_default_build_root())
    return [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []


def open_paths(proc: Path = PROC) -> Iterator[str]:
    """What every process we may inspect holds open (targets of /proc/<pid>/fd/*)."""
    for pid in proc.iterdir():
        if not pid.name.isdigit():
            continue
        try:
            fds = list((pid / "fd").iterdir())
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                yield os.readlink(fd)
            except OSError:
                continue


def stale_locks(roots: list[Path], proc: Path = PROC) -> list[Path]:
    """The `lock` files under these build roots that no process holds open."""
    locks = [lock for root in roots for lock in sorted(root.glob("*/lock")) if lock.is_file()]
    if not locks or not proc.is_dir():
        return []
    held = set(open_paths(proc))
    return [lock for lock in locks if str(lock.resolve()) not in held and str(lock) not in held]


def clear_stale_locks(
    roots: list[Path] | None = None,
    proc: Path = PROC,
    say: Callable[[str], None] | None = None,
) -> list[Path]:
    """Remove the stale build locks (see the module's docstring); returns what was removed."""
    roots = build_roots() if roots is None else roots
    removed: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        try:
            guard = os.open(root / GUARD_NAME, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError:  # a read-only cache: nothing of ours to clear
            continue
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            for lock in stale_locks([root], proc):
                try:
                    lock.unlink()
                except FileNotFoundError:  # its build ended meanwhile
                    continue
                removed.append(lock)
        finally:
            os.close(guard)  # also releases the flock
    for lock in removed:
        (say or _stderr)(
            f"deepspeed: removed a stale build lock left by an interrupted build ({lock}); "
            "without this the run would wait on it forever"
        )
    return removed


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
