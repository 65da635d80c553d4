"""Starting `swift web-ui` as a real process for the web UI's tests, and a small data file."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def task_file(path: Path, n: int = 32) -> Path:
    from swift_core.demo.tasks import make_split

    rows, _ = make_split(n, 3, seed=1)
    path.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
    return path


class WebUI:
    """`swift web-ui --port 0` in a subprocess; `url` is what it prints (token included)."""

    def __init__(self, work_dir: Path, *extra: str, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "swift_core",
                "web-ui",
                "--port",
                "0",
                "--work_dir",
                str(work_dir),
                *extra,
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        line = self.proc.stderr.readline()
        found = re.search(r"open (\S+)", line)
        if not found:
            self.proc.kill()
            raise AssertionError(f"web-ui did not start: {line}{self.proc.stderr.read()}")
        self.url = found.group(1)
        self.base = self.url.split("?")[0]
        self.client = httpx.Client(base_url=self.base, timeout=60)

    def kill(self) -> None:
        """SIGKILL: the harshest restart; jobs must not notice."""
        self.client.close()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def wait(
        self, job_id: str, until: tuple[str, ...] = ("finished", "failed", "stopped", "lost"), timeout=300
    ):
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.client.get(f"/api/jobs/{job_id}").json()
            if job["status"] in until:
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s")
