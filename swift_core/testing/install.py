"""Installing distributions for a test, and running the CLI as a user would.

A plugin's registration is only real once it is installed: its entry point comes from the
distribution's metadata, not from the source tree. `pip_install_target` installs project folders
into a private folder (for `PYTHONPATH`), so a test sees real entry points without touching the
environment the tests run in.
"""

from __future__ import annotations

import os
import shutil
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
    process's environment without its plugin-policy variables. Output is captured as text."""
    full_env = without_policy()
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "swift_core", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
