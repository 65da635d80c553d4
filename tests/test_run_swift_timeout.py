"""swift_core.testing.install.run_swift past its timeout: the launched workers go with the launcher.

Before, only the launcher was killed and the two workers of a `--nproc_per_node 2` run kept
running, holding the cores and locks that every later test of the run then waited on.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import pytest

from swift_core.testing.distributed import free_port
from swift_core.testing.install import run_swift


def _processes_naming(marker: str) -> list[int]:
    found = []
    for pid in Path("/proc").iterdir():
        if pid.name.isdigit():
            try:
                cmdline = (pid / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(pid.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_timed_out_launch_leaves_no_worker(tiny_qwen, tmp_path):
    from webui_helpers import task_file

    out = tmp_path / "never-finishes"
    data = task_file(tmp_path / "d.jsonl", 8)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as info:
        run_swift(
            "sft", "--model", str(tiny_qwen), "--dataset", str(data), "--output_dir", str(out),
            "--max_steps", "100000", "--nproc_per_node", "2", "--master_port", str(free_port()),
            timeout=8,
        )  # fmt: skip
    assert "launching 2 process(es)" in (info.value.stderr or "")
    assert time.monotonic() - started < 60
    deadline = time.monotonic() + 10
    while _processes_naming(str(out)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_naming(str(out)) == []


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_terminated_launcher_says_so_in_one_line_and_stops_its_workers(tiny_qwen, tmp_path):
    import os
    import signal
    import sys

    from webui_helpers import task_file

    from swift_core.testing.env import without_policy

    out = tmp_path / "terminated"
    data = task_file(tmp_path / "d.jsonl", 8)
    command = [
        sys.executable, "-m", "swift_core", "sft", "--model", str(tiny_qwen), "--dataset", str(data),
        "--output_dir", str(out), "--max_steps", "100000", "--nproc_per_node", "2", "--master_port", str(free_port()),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env=without_policy(), start_new_session=True
    )
    try:
        assert "launching 2 process(es)" in proc.stderr.readline()
        deadline = time.monotonic() + 60
        while len(_processes_naming(str(out))) < 3 and time.monotonic() < deadline:  # launcher + 2 workers
            time.sleep(0.2)
        assert len(_processes_naming(str(out))) == 3
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=120)[1]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, rest[-2000:]
    assert "this launcher got SIGTERM; its workers were stopped" in rest and "Traceback" not in rest, rest[
        -2000:
    ]
    assert _processes_naming(str(out)) == []
