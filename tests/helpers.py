"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
POLICY_ENV = ("SWIFT_POLICY", "SWIFT_LOAD_PLUGINS", "SWIFT_DISABLE_PLUGINS")


def run_swift(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k not in POLICY_ENV}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "swift_core", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
    )


def pip_install_target(target: Path, *projects: Path) -> Path:
    """pip-install project folders into `target` (for PYTHONPATH): real dist-info and entry points,
    nothing added to the test environment itself. Build from copies: setuptools writes *.egg-info
    into the source folder, which would make a fixture on sys.path look installed."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        copies = [str(shutil.copytree(p, Path(tmp) / p.name)) for p in projects]
        subprocess.run(
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
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    return target


def install_fixture(tmp_path: Path, name: str) -> Path:
    """One fixture distribution of tests/fixtures installed into tmp_path/site."""
    return pip_install_target(tmp_path / "site", FIXTURES / name)
