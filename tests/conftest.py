"""Shared test set-up: one thread, no hub, no stray plugin policy, fixture plugins importable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, POLICY_ENV

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

for _dist in sorted(FIXTURES.glob("swift-*")):
    if str(_dist) not in sys.path:
        sys.path.append(str(_dist))


@pytest.fixture(autouse=True)
def _clean_policy_env(monkeypatch):
    for key in POLICY_ENV:
        monkeypatch.delenv(key, raising=False)
    from swift_core.plugins import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture(scope="session")
def installed_fixture_plugins(tmp_path_factory) -> Path:
    """The fixture distributions pip-installed into a private target folder (real entry points).

    Returns the folder to put on PYTHONPATH; nothing is installed into the test environment itself.
    """
    target = tmp_path_factory.mktemp("site")
    dists = [str(FIXTURES / name) for name in ("swift-hello", "swift-broken", "swift-forbidden")]
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
            *dists,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return target
