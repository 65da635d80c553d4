"""Shared test set-up: one thread, no hub, no stray plugin policy, fixture plugins importable."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, POLICY_ENV, pip_install_target

from swift_core.testing.env import setup_test_environment

setup_test_environment()

# A suite started in the background by a non-interactive shell (`make test &`) gets SIGINT ignored,
# and every child inherits that: the Ctrl-C tests (training, batch inference) would see nothing.
# A Python handler here is reset to the default in children, which then turn SIGINT into
# KeyboardInterrupt as a user's terminal would.
signal.signal(signal.SIGINT, signal.default_int_handler)

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
    return pip_install_target(
        target, *(FIXTURES / n for n in ("swift-hello", "swift-broken", "swift-forbidden"))
    )


@pytest.fixture(scope="session")
def tiny_tokenizers():
    """A tokenizer trained on the spot per template (cached for the session)."""
    from swift_core.models.tiny import train_tokenizer

    cache = {}

    def get(template):
        if template.name not in cache:
            cache[template.name] = train_tokenizer(template, vocab_size=600)
        return cache[template.name]

    return get


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    """A tiny Qwen2-architecture model with the qwen2_5 template, built once per session."""
    from swift_core.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen", model_type="qwen2", template="qwen2_5")


@pytest.fixture(scope="session")
def demo_result(tmp_path_factory):
    """The README's main job, run once per session: its pretrained base serves other tests too."""
    os.environ["OMP_NUM_THREADS"] = "2"
    try:
        from swift_core.demo.__main__ import main

        return main(["--work_dir", str(tmp_path_factory.mktemp("demo"))])
    finally:
        os.environ["OMP_NUM_THREADS"] = "1"
