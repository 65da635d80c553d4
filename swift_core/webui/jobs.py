"""The web UI's job store: every job a folder on disk, every job the `swift` CLI in a subprocess.

    WORK_DIR/jobs/<id>/job.json     what to run: command, argv (written once, atomically)
                      state.json    status, pid, exit code (written by the runner, atomically)
                      log.txt       the command's stdout and stderr
                      output/       the command's --output_dir when the form left it at default

The store holds no state of its own in memory that matters: a restarted server reads the same
folders and finds running jobs still running (their runners are detached, `runner.py`), so the
page re-attaches. Closing the browser changes nothing: jobs never write to the connection.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_core.atomic import write_json_atomic
from swift_core.errors import SwiftError
from swift_core.models.checkpoint import MARKER, read_json_object

ACTIVE = ("starting", "running", "stopping")


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (a runner this server started, exited but not yet reaped) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class Job:
    id: str
    dir: Path
    command: str
    argv: list[str]
    created: float
    state: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.state.get("status", "starting"))

    @property
    def output_dir(self) -> Path | None:
        value = _flag(self.argv, "output_dir")
        if value is None:
            return None
        path = Path(value)
        return path if path.is_absolute() else Path(self.state.get("cwd", ".")) / path

    def metrics(self) -> list[dict[str, Any]]:
        """The newest run's logging.jsonl lines (training jobs), in order; a torn last line is skipped."""
        found = self._logging_files()
        if not found:
            return []
        rows = []
        for line in found[-1].read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows

    def _logging_files(self) -> list[Path]:
        out = self.output_dir
        if out is None or not out.is_dir():
            return []
        return sorted(out.glob("**/logging.jsonl"), key=lambda p: p.stat().st_mtime)

    def checkpoints(self) -> list[str]:
        """Complete checkpoints (and merged/exported folders) the job wrote, oldest first."""
        out = self.output_dir
        if out is None or not out.is_dir():
            return []
        found = sorted((p.parent for p in out.glob("**/" + MARKER)), key=lambda p: p.stat().st_mtime)
        return [str(p) for p in found]

    def log_tail(self, offset: int = 0, limit: int = 1 << 20) -> tuple[str, int]:
        """Log text from byte `offset` (at most `limit` bytes) and the offset after it."""
        path = self.dir / "log.txt"
        if not path.exists():
            return "", offset
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(limit)
        return data.decode("utf-8", errors="replace"), offset + len(data)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "argv": self.argv,
            "created": self.created,
            "status": self.status,
            "returncode": self.state.get("returncode"),
            "attempt": self.state.get("attempt", 1),
            "output_dir": str(self.output_dir) if self.output_dir else None,
            "resumable": self.state.get("resumable", False),
        }


def _flag(argv: list[str], name: str) -> str | None:
    for i, token in enumerate(argv):
        if token == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(f"--{name}="):
            return token.split("=", 1)[1]
    return None


class JobStore:
    def __init__(self, work_dir: str | Path):
        self.root = Path(work_dir).resolve() / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self._runners: dict[str, subprocess.Popen[bytes]] = {}

    # -- reading ---------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job_dir = self.root / job_id
        if "/" in job_id or job_id.startswith(".") or not (job_dir / "job.json").is_file():
            raise KeyError(job_id)
        self._reap()
        spec = read_json_object(job_dir / "job.json")
        state = read_json_object(job_dir / "state.json") if (job_dir / "state.json").exists() else {}
        if state.get("status", "starting") in ACTIVE and not _alive(state.get("runner_pid")):
            # The runner is gone without recording an end (killed, or the machine restarted).
            started = state.get("runner_pid") is not None or time.time() - spec["created"] > 60
            if started:
                state = {**state, "status": "lost"}
        return Job(job_id, job_dir, spec["command"], list(spec["argv"]), spec["created"], state)

    def list(self) -> list[Job]:
        jobs = []
        for path in self.root.iterdir():
            if (path / "job.json").is_file():
                try:
                    jobs.append(self.get(path.name))
                except (KeyError, SwiftError, ValueError):
                    continue
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def _reap(self) -> None:
        for job_id, proc in list(self._runners.items()):
            if proc.poll() is not None:
                del self._runners[job_id]

    # -- acting ----------------------------------------------------------------------------------

    def create(self, command: str, argv: list[str], *, resumable: bool, own_output_dir: bool = False) -> Job:
        """Start a job. With `own_output_dir`, the command writes into the job's folder."""
        job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        job_dir = self.root / job_id
        job_dir.mkdir()
        if own_output_dir:
            argv = [*argv, "--output_dir", str(job_dir / "output")]
        write_json_atomic(job_dir / "job.json", {"command": command, "argv": argv, "created": time.time()})
        write_json_atomic(
            job_dir / "state.json",
            {"status": "starting", "attempt": 1, "cwd": os.getcwd(), "resumable": resumable},
        )
        self._start(job_id)
        return self.get(job_id)

    def _start(self, job_id: str) -> None:
        job_dir = self.root / job_id
        self._runners[job_id] = subprocess.Popen(
            [sys.executable, "-m", "swift_core.webui.runner", str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(job_dir / "runner.err", "ab"),  # noqa: SIM115 - handed to the child
            start_new_session=True,  # Ctrl-C or a restart of the server does not reach the job
            cwd=read_json_object(job_dir / "state.json").get("cwd") or None,
        )

    def stop(self, job_id: str) -> Job:
        job = self.get(job_id)
        runner = job.state.get("runner_pid")
        if job.status not in ACTIVE or not runner:
            raise SwiftError(f"job {job_id} is not running ({job.status})")
        os.kill(int(runner), signal.SIGTERM)
        return self.get(job_id)

    def resume(self, job_id: str) -> Job:
        """Run a stopped, failed or lost training job again from its newest complete checkpoint."""
        job = self.get(job_id)
        if job.status in ACTIVE:
            raise SwiftError(f"job {job_id} is still {job.status}")
        if not job.state.get("resumable"):
            raise SwiftError(
                f"job {job_id} ({job.command}) cannot resume: its command has no --resume_from_checkpoint"
            )
        spec = read_json_object(job.dir / "job.json")
        spec["extra_argv"] = ["--resume_from_checkpoint", "auto"]
        write_json_atomic(job.dir / "job.json", spec)
        state = {k: v for k, v in job.state.items() if k not in ("returncode", "ended", "pid", "runner_pid")}
        state.update(status="starting", attempt=int(job.state.get("attempt", 1)) + 1)
        write_json_atomic(job.dir / "state.json", state)
        self._start(job_id)
        return self.get(job_id)
