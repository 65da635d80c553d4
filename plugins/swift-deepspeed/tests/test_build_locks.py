"""swift-deepspeed's clearing of stale torch build locks (swift_deepspeed/build_locks.py).

A lock that some process holds open (a build in progress, here or in another process) is kept;
one that nobody holds (its builder was killed) is removed and said. The run that DeepSpeed would
otherwise hang is in test_deepspeed.py (the resumed ZeRO-2 run starts over a stale lock).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from swift_deepspeed import build_locks
from torch.utils.file_baton import FileBaton


def _build_folder(root: Path, name: str = "deepspeed_shm_comm") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "build.ninja").write_text("")
    return folder


def test_a_lock_nobody_holds_is_removed_and_said(tmp_path):
    lock = _build_folder(tmp_path) / "lock"
    lock.touch()
    said: list[str] = []
    assert build_locks.clear_stale_locks([tmp_path], say=said.append) == [lock]
    assert not lock.exists()
    assert len(said) == 1 and str(lock) in said[0] and "stale build lock" in said[0]
    assert (lock.parent / "build.ninja").exists()  # only the lock goes


def test_a_build_in_progress_in_this_process_keeps_its_lock(tmp_path):
    lock = _build_folder(tmp_path) / "lock"
    baton = FileBaton(str(lock))  # exactly what torch.utils.cpp_extension holds while building
    assert baton.try_acquire()
    try:
        assert build_locks.clear_stale_locks([tmp_path], say=lambda _: None) == []
        assert lock.exists()
    finally:
        baton.release()


def test_a_build_in_progress_in_another_process_keeps_its_lock(tmp_path):
    lock = _build_folder(tmp_path, "cpu_adam") / "lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys; os.open(sys.argv[1], os.O_CREAT | os.O_EXCL); print('held', flush=True); sys.stdin.read()",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert build_locks.clear_stale_locks([tmp_path], say=lambda _: None) == []
        assert lock.exists()
    finally:
        holder.communicate("")
    # Its holder is gone without removing it: now it is stale.
    assert build_locks.clear_stale_locks([tmp_path], say=lambda _: None) == [lock]


def test_only_stale_locks_go_among_several(tmp_path):
    stale = _build_folder(tmp_path, "a") / "lock"
    stale.touch()
    held = _build_folder(tmp_path, "b") / "lock"
    baton = FileBaton(str(held))
    assert baton.try_acquire()
    try:
        assert build_locks.clear_stale_locks([tmp_path], say=lambda _: None) == [stale]
        assert held.exists()
    finally:
        baton.release()


def test_without_proc_nothing_is_removed(tmp_path):
    lock = _build_folder(tmp_path) / "lock"
    lock.touch()
    assert build_locks.clear_stale_locks([tmp_path], proc=tmp_path / "no-proc", say=lambda _: None) == []
    assert lock.exists()


def test_build_roots_follow_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    assert build_locks.build_roots() == [tmp_path / "ext"]
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "cache" / "torch_extensions" / "py311_cpu").mkdir(parents=True)
    assert build_locks.build_roots() == [tmp_path / "cache" / "torch_extensions" / "py311_cpu"]
