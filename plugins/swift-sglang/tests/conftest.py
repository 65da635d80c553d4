"""Fixtures of swift-sglang's tests: the fake `sglang` module, a tiny model, adapter folders.

SGLang itself needs a GPU, so the engine is tested against tests/fake_sglang.py (see its
docstring); bench/gpu/sglang_smoke.py runs the real library on a GPU. What these fixtures share
with swift-lmdeploy's comes from the test kit installed with swift-core
(`swift_core.testing.engines`), so this distribution tests on its own.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from swift_core.testing import EnginePlugin, fake_library, setup_test_environment, tiny_model_and_adapters

setup_test_environment()  # one thread, hubs offline (before torch and tokenizers load)

HERE = Path(__file__).parent
PLUGIN = EnginePlugin(
    "sglang", "swift_sglang", "swift-sglang", "swift_sglang.engine:SglangEngine", "sglang>=0.4.6"
)


def _server_args(fake: types.ModuleType) -> dict[str, types.ModuleType]:
    """`sglang.srt.server_args.ServerArgs`, which the engine imports, from the fake."""
    srt = types.ModuleType("sglang.srt")
    server_args = types.ModuleType("sglang.srt.server_args")
    server_args.ServerArgs = fake.ServerArgs
    srt.server_args = server_args
    fake.srt = srt
    return {"sglang.srt": srt, "sglang.srt.server_args": server_args}


@pytest.fixture(scope="module")
def fake_sglang():
    """tests/fake_sglang.py as the module `sglang` (and `sglang.srt.server_args`), whatever is
    installed, for one test module; then the previous modules back."""
    yield from fake_library(
        HERE / "fake_sglang.py",
        ("sglang", "sglang.srt", "sglang.srt.server_args", "swift_sglang.engine"),
        close=lambda engine: engine.shutdown(),
        submodules=_server_args,
    )


@pytest.fixture()
def fake(fake_sglang):
    """The fake with its knobs reset around each test."""
    fake_sglang.reset()
    yield fake_sglang
    fake_sglang.reset()


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
    return tiny_model_and_adapters(tmp_path_factory.mktemp("sglang"), manager)
