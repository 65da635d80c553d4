"""Helpers for the tests of an engine plugin, above all one tested against a fake of its library
(as swift-lmdeploy's and swift-sglang's tests are: the real libraries need a GPU).

    the plugin    EnginePlugin(name, package, dist, factory, requirement): its source and manager
    running       run_async(coro), collect(engine, request) (every chunk of a stream),
                  wait_for(predicate)
    fixtures      fake_library(path, names, close): a fake module standing in for the library;
                  tiny_model_and_adapters(root, manager): a tiny Qwen2.5 and two LoRA folders
    registration  assert_registers_without_importing, assert_missing_library_says_what_to_install,
                  assert_entry_point, installed(dist)

Installed with swift-core, so a plugin's tests import it from there (plugins cannot import each
other, and their tests do not import the Swift repository's tests/ folder). Light to import:
pytest, torch and the engine load only inside the functions that use them. The contract every
engine keeps is `swift_core.testing.engine_contract.check_engine`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class EnginePlugin:
    """One engine plugin: its plugin (and engine) name, Python package, distribution, the engine's
    factory, and the library requirement of its `gpu` extra."""

    name: str  # the plugin, the engine and the library's module: "lmdeploy"
    package: str  # "swift_lmdeploy"
    dist: str  # "swift-lmdeploy"
    factory: str  # "swift_lmdeploy.engine:LmdeployEngine"
    requirement: str  # "lmdeploy>=0.7"

    def source(self) -> Any:
        from swift_core.plugins import PluginSource

        return PluginSource(self.name, f"{self.package}.plugin", self.dist, "0.1.0")

    def manager(self) -> Any:
        """A plugin manager with the built-in plugins and this one, under an empty policy."""
        from swift_core.testing.managers import plugin_manager

        return plugin_manager(self.source())


# --- running the engine ------------------------------------------------------------------------------


def run_async(coro: Any) -> Any:
    """`coro` run to its end on a new event loop (the engine's async API from a plain test)."""
    return asyncio.run(coro)


def collect(engine, request) -> list[Any]:
    """Every chunk of `engine.stream(request)`."""

    async def go():
        return [chunk async for chunk in engine.stream(request)]

    return run_async(go())


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `predicate()` comes true within `timeout` seconds (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


# --- fixtures ------------------------------------------------------------------------------------------


def fake_library(
    path: str | Path,
    names: tuple[str, ...],
    close: Callable[[Any], None],
    submodules: Callable[[ModuleType], dict[str, ModuleType]] | None = None,
) -> Iterator[ModuleType]:
    """For a fixture: the fake at `path` as the module `names[0]` (whatever is installed), with
    `submodules(fake)` beside it; the other `names` (the plugin's engine module) are dropped so that
    they import the fake. Afterwards the fake's engines are closed and the previous modules return.

    The fake defines `reset()` (its knobs back to their defaults) and `ENGINES` (the engines it
    started, each handed to `close`)."""
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    spec = importlib.util.spec_from_file_location(names[0], path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[names[0]] = module
    spec.loader.exec_module(module)
    extra = submodules(module) if submodules else {}
    sys.modules.update(extra)
    yield module
    module.reset()
    for engine in module.ENGINES:
        close(engine)
    for name in (*names, *extra):
        sys.modules.pop(name, None)
    sys.modules.update(saved)


def tiny_model_and_adapters(root: str | Path, manager: Any) -> dict[str, Any]:
    """A tiny Qwen2.5 (its tokenizer and template are what matter to a fake engine) and two LoRA
    folders: a plain peft folder and a complete Swift checkpoint."""
    from swift_core.testing.models import tiny_model

    root = Path(root)
    base = tiny_model(root / "base", "qwen2_5", manager=manager)
    plain = root / "plain-lora"
    plain.mkdir()
    (plain / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    ckpt = root / "run" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (ckpt / "args.json").write_text(json.dumps({"template": "qwen2_5", "model_dir": str(base)}))
    (ckpt / "swift_checkpoint.json").write_text(json.dumps({"complete": True}))
    return {"base": str(base), "plain": str(plain), "ckpt": str(ckpt), "root": root}


# --- the plugin without its library ------------------------------------------------------------------


def installed(dist: str) -> bool:
    """Whether the distribution `dist` is installed (by its metadata, as requirements are checked)."""
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def assert_registers_without_importing(plugin: EnginePlugin) -> None:
    """In a fresh process: the engine is registered, and neither the library nor torch is imported."""
    code = textwrap.dedent(
        f"""
        import sys
        from swift_core.plugins import PluginManager, PluginSource, builtin_sources
        from swift_core.policy import Policy
        source = PluginSource({plugin.name!r}, {plugin.package + ".plugin"!r}, {plugin.dist!r}, "0.1.0")
        m = PluginManager(Policy(), [*builtin_sources(), source])
        d = m.get("engines", {plugin.name!r})
        assert d.factory == {plugin.factory!r}, d
        assert d.requires == ({plugin.name!r},), d
        heavy = [n for n in ({plugin.name!r}, "torch", "transformers", {plugin.package + ".engine"!r})
                 if n in sys.modules]
        assert not heavy, heavy
        print(m.plugins[{plugin.name!r}].status)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "loaded"


def assert_missing_library_says_what_to_install(plugin: EnginePlugin, manager: Any) -> None:
    """Selecting the engine where its library is missing names the distribution's `gpu` extra and
    the requirement; skipped (with pytest) where the library is installed."""
    import pytest

    from swift_core.errors import CapabilityLoadError

    descriptor = manager.get("engines", plugin.name)
    assert f"{plugin.dist}[gpu]" in descriptor.description
    if installed(plugin.name):
        assert descriptor.missing_requirements() == []
        pytest.skip(f"{plugin.name} is installed here: the missing-requirement error cannot show")
    with pytest.raises(CapabilityLoadError) as caught:
        manager.load("engines", plugin.name)
    assert str(caught.value) == (
        f"engine {plugin.name!r} from plugin {plugin.name!r} ({plugin.dist}) needs {plugin.name}; "
        f"install with: pip install {plugin.name!r}"
    )


def assert_entry_point(plugin: EnginePlugin) -> None:
    """The installed distribution declares its `swift` entry point; the library only in an extra."""
    import pytest

    try:
        dist = metadata.distribution(plugin.dist)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{plugin.dist} is not installed in this environment")
    points = [ep for ep in dist.entry_points if ep.group == "swift"]
    assert [(ep.name, ep.value) for ep in points] == [(plugin.name, f"{plugin.package}.plugin")]
    assert plugin.requirement in " ".join(dist.requires or [])  # only in the `gpu` extra
    assert not [r for r in dist.requires or [] if r.startswith(plugin.name) and "extra" not in r]
