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
