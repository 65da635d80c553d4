"""The process that runs one web-UI job: `python -m swift_core.webui.runner JOB_DIR`.

The web UI starts this detached (its own session), and it starts the `swift` command as its
child. It exists so that a job's end is recorded by someone who outlives the web server: the
server may be restarted (or its browser closed) while a job runs, and the runner still waits for
the command, then writes the exit status into `state.json` (atomically, so the page never reads
half a state). SIGTERM from the server's Stop button is passed on as SIGINT (training stops at
the step it is on, as with Ctrl-C), then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from swift_core.atomic import write_json_atomic
from swift_core.models.checkpoint import read_json_object

STOP_GRACE_S = float(os.environ.get("SWIFT_WEBUI_STOP_GRACE", "30"))


def _update(job_dir: Path, **fields: Any) -> None:
    state_path = job_dir / "state.json"
    state = read_json_object(state_path) if state_path.exists() else {}
    state.update(fields)
    write_json_atomic(state_path, state)


def run(job_dir: Path) -> int:
    job = read_json_object(job_dir / "job.json")
    attempt = (
        read_json_object(job_dir / "state.json").get("attempt", 1) if (job_dir / "state.json").exists() else 1
    )
    argv = [sys.executable, "-m", "swift_core", job["command"], *job["argv"], *job.get("extra_argv", [])]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(job_dir / "log.txt", "ab", buffering=0) as log:
        log.write(
            f"$ swift {' '.join([job['command'], *job['argv'], *job.get('extra_argv', [])])}\n".encode()
        )
        child = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        stop_requested = threading.Event()

        def on_stop(signum: int, frame: Any) -> None:
            if stop_requested.is_set():
                return
            stop_requested.set()
            _update(job_dir, status="stopping")
            child.send_signal(signal.SIGINT)

            def kill_later() -> None:
                time.sleep(STOP_GRACE_S)
                if child.poll() is None:
                    child.kill()

            threading.Thread(target=kill_later, daemon=True).start()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        _update(
            job_dir,
            status="running",
            pid=child.pid,
            runner_pid=os.getpid(),
            started=time.time(),
            attempt=attempt,
        )
        code = child.wait()
    status = "stopped" if stop_requested.is_set() else ("finished" if code == 0 else "failed")
    _update(job_dir, status=status, returncode=code, ended=time.time())
    return code


if __name__ == "__main__":  # pragma: no cover - exercised through the job service's tests
    if len(sys.argv) != 2:
        sys.exit("usage: python -m swift_core.webui.runner JOB_DIR")
    sys.exit(0 if run(Path(sys.argv[1])) == 0 else 1)
