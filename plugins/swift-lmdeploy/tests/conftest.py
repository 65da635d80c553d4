"""Fixtures of swift-lmdeploy's tests: the fake `lmdeploy` module, a tiny model, adapter folders.

LMDeploy itself needs a CUDA GPU, so the engine is tested against tests/fake_lmdeploy.py (see its
docstring); bench/gpu/lmdeploy_smoke.py runs the real library on a GPU. What these fixtures share
with swift-sglang's comes from the test kit installed with swift-core
(`swift_core.testing.engines`), so this distribution tests on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swift_core.testing import EnginePlugin, fake_library, setup_test_environment, tiny_model_and_adapters

setup_test_environment()  # one thread, hubs offline (before torch and tokenizers load)

HERE = Path(__file__).parent
PLUGIN = EnginePlugin(
    "lmdeploy", "swift_lmdeploy", "swift-lmdeploy", "swift_lmdeploy.engine:LmdeployEngine", "lmdeploy>=0.7"
)


@pytest.fixture(scope="module")
def fake_lmdeploy():
    """tests/fake_lmdeploy.py as the module `lmdeploy` (whatever is installed) for one test module,
    then the previous modules back."""
    yield from fake_library(
        HERE / "fake_lmdeploy.py", ("lmdeploy", "swift_lmdeploy.engine"), close=lambda engine: engine.close()
    )


@pytest.fixture()
def fake(fake_lmdeploy):
    """The fake with its knobs reset around each test."""
    fake_lmdeploy.reset()
    yield fake_lmdeploy
    fake_lmdeploy.reset()


@pytest.fixture(scope="session")
def plugin():
    return PLUGIN


@pytest.fixture(scope="session")
def manager():
    return PLUGIN.manager()


@pytest.fixture(scope="session")
def models(tmp_path_factory, manager):
    """A tiny Qwen2.5 and two LoRA folders (a peft folder, a Swift checkpoint); the fake engine reads
    no weights."""
    return tiny_model_and_adapters(tmp_path_factory.mktemp("lmdeploy"), manager)
