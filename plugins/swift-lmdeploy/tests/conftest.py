"""Fixtures of swift-lmdeploy's tests: the fake `lmdeploy` module, a tiny model, adapter folders.

LMDeploy itself needs a CUDA GPU, so the engine is tested against tests/fake_lmdeploy.py (see its
docstring); bench/gpu/lmdeploy_smoke.py runs the real library on a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def fake_lmdeploy():
    """tests/fake_lmdeploy.py as the module `lmdeploy` (whatever is installed) for one test module,
    then the previous modules back."""
    saved = {
        name: sys.modules.pop(name) for name in ("lmdeploy", "swift_lmdeploy.engine") if name in sys.modules
    }
    spec = importlib.util.spec_from_file_location("lmdeploy", HERE / "fake_lmdeploy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lmdeploy"] = module
    spec.loader.exec_module(module)
    yield module
    module.reset()
    for engine in module.ENGINES:
        engine.close()
    for name in ("lmdeploy", "swift_lmdeploy.engine"):
        sys.modules.pop(name, None)
    sys.modules.update(saved)


@pytest.fixture()
def fake(fake_lmdeploy):
    """The fake with its knobs reset around each test."""
    fake_lmdeploy.reset()
    yield fake_lmdeploy
    fake_lmdeploy.reset()


@pytest.fixture(scope="session")
def manager():
    from swift_core.plugins import PluginManager, PluginSource, builtin_sources
    from swift_core.policy import Policy

    source = PluginSource("lmdeploy", "swift_lmdeploy.plugin", "swift-lmdeploy", "0.1.0")
    return PluginManager(Policy(), [*builtin_sources(), source])


@pytest.fixture(scope="session")
def models(tmp_path_factory, manager):
    """A tiny Qwen2.5 (its tokenizer and template are what matter here) and two LoRA folders: a
    plain peft folder and a complete Swift checkpoint. The fake engine reads no weights."""
    from swift_core.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("lmdeploy")
    base = build_tiny_model(root / "base", "qwen2_5", manager=manager)
    plain = root / "plain-lora"
    plain.mkdir()
    (plain / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    ckpt = root / "run" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (ckpt / "args.json").write_text(json.dumps({"template": "qwen2_5", "model_dir": str(base)}))
    (ckpt / "swift_checkpoint.json").write_text(json.dumps({"complete": True}))
    return {"base": str(base), "plain": str(plain), "ckpt": str(ckpt), "root": root}
