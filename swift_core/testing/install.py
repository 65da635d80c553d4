"""Installing distributions for a test, and running the CLI as a user would.

A plugin's registration is only real once it is installed: its entry point comes from the
distribution's metadata, not from the source tree. `pip_install_target` installs project folders
into a private folder (for `PYTHONPATH`), so a test sees real entry points without touching the
environment the tests run in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from swift_core.testing.env import without_policy


def pip_install_target(target: str | Path, *projects: str | Path, timeout: float = 600) -> Path:
    """pip-install project folders into `target` (no dependencies, no build isolation: offline).

    Builds from copies: setuptools writes `*.egg-info` into the source folder, which would make a
    project folder on sys.path look installed. Returns `target`, the folder to put on PYTHONPATH.
    """
    target = Path(target)
    with tempfile.TemporaryDirectory() as tmp:
        copies = [str(shutil.copytree(p, Path(tmp) / Path(p).name)) for p in projects]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(target),
                *copies,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"pip install --target {target} failed:\n{proc.stdout}{proc.stderr}")
    return target


def pythonpath(*folders: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`{"PYTHONPATH": ...}` with `folders` first, then whatever PYTHONPATH already held."""
    env = os.environ if environ is None else environ
    parts = [str(f) for f in folders] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join(parts)}


def run_swift(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`python -m swift_core ARGS` in a fresh process, as a user runs it; `env` is added to this
    process's environment without its plugin-policy variables. Output is captured as text.

    It runs in a session of its own, and past `timeout` the whole session is killed, not only the
    command; the workers of a launched run (`--nproc_per_node`, each in a session of torchrun's)
    end with their launcher. Left running they would hold the cores, ports and locks of every
    later test.
    """
    full_env = without_policy()
    full_env.update(env or {})
    command = [sys.executable, "-m", "swift_core", *args]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(proc.pid)
            try:  # its workers end with it (die_with_launcher), closing the pipes they share
                stdout, stderr = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                stdout, stderr = (
                    None,
                    "(what it printed is lost: something it started still holds its output)",
                )
            raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr) from None
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
