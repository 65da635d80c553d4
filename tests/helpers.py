"""Helpers of the core's tests (importable: pytest puts tests/ on sys.path).

What a plugin's tests need too lives in the installed test kit, `swift_core.testing`; this module
keeps what is about this repository (its folders and fixture distributions).
"""

from __future__ import annotations

from pathlib import Path

from swift_core.testing.env import POLICY_ENV
from swift_core.testing.install import pip_install_target, run_swift

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

__all__ = ["FIXTURES", "POLICY_ENV", "REPO", "install_fixture", "pip_install_target", "run_swift"]


def install_fixture(tmp_path: Path, name: str) -> Path:
    """One fixture distribution of tests/fixtures installed into tmp_path/site."""
    return pip_install_target(tmp_path / "site", FIXTURES / name)
