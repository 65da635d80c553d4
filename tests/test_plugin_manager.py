"""The plugin manager in-process, with the fixture plugins of tests/fixtures as sources."""

import sys

import pytest

from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy

CPU = PluginSource("runtime-cpu", "swift_core.builtin.runtime_cpu", "swift-core", "0.1.0", builtin=True)
HELLO = PluginSource("hello", "swift_hello.plugin", "swift-hello", "1.2.0")
BROKEN = PluginSource("broken", "swift_broken.plugin", "swift-broken", "0.1.0")
FORBIDDEN = PluginSource("forbidden", "swift_forbidden.plugin", "swift-forbidden", "0.3.0")
DUPE = PluginSource("dupe", "swift_dupe.plugin", "swift-dupe", "0.1.0")


def test_loaded_plugin_reports_hooks_and_capabilities():
    manager = PluginManager(Policy(), [CPU, HELLO])
    info = manager.plugins["hello"]
    assert info.status == "loaded"
    assert info.hooks == ["after_train", "register_commands", "register_engines", "register_templates"]
    assert info.capabilities == {"engines": ["echo"], "templates": ["hello-chat"]}
    engine = manager.load("engines", "hello-echo")()
    assert engine.generate("abc") == "cba"
    assert manager.get("engines", "echo").distribution == "swift-hello"


def test_lifecycle_hooks_reach_plugins():
    manager = PluginManager(Policy(), [CPU, HELLO])
    results = manager.hook.after_train(trainer=None, output_dir="/tmp/run", args=None)
    assert results == ["hello saw training end in /tmp/run"]


def test_a_plugin_failing_on_import_is_reported_and_skipped():
    manager = PluginManager(Policy(), [CPU, BROKEN, HELLO])
    broken = manager.plugins["broken"]
    assert broken.status == "failed"
    assert "ImportError: swift-broken is broken on purpose" in broken.reason
    assert manager.plugins["hello"].status == "loaded"
    assert any("broken" in w for w in manager.warnings)


def test_blocked_plugin_is_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    monkeypatch.setenv("SWIFT_TEST_IMPORT_MARKER", str(marker))
    sys.modules.pop("swift_forbidden.plugin", None)
    manager = PluginManager(Policy(disabled=frozenset({"forbidden"})), [CPU, FORBIDDEN])
    assert manager.plugins["forbidden"].status == "blocked"
    assert "swift_forbidden.plugin" not in sys.modules
    assert not marker.exists()
    assert "forbidden-engine" not in manager.registry("engines")
    # and the same plugin, allowed, is imported (so the marker does detect an import)
    PluginManager(Policy(), [CPU, FORBIDDEN])
    assert marker.exists()
    sys.modules.pop("swift_forbidden.plugin", None)


def test_duplicate_capability_fails_the_second_plugin_and_drops_all_it_registered():
    manager = PluginManager(Policy(), [CPU, DUPE])
    dupe = manager.plugins["dupe"]
    assert dupe.status == "failed"
    assert "'runtime-cpu' (swift-core)" in dupe.reason and "'dupe' (swift-dupe)" in dupe.reason
    assert "dupe-template" not in manager.registry("templates")
    assert manager.get("runtimes", "cpu").plugin == "runtime-cpu"


def test_empty_load_list_loads_nothing_and_unknown_names_warn(caplog):
    manager = PluginManager(Policy(load_only=frozenset()), [CPU, HELLO])
    assert all(i.status == "blocked" for i in manager.plugins.values())
    assert len(manager.registry("runtimes")) == 0
    manager = PluginManager(Policy(load_only=frozenset({"hello", "nope"})), [CPU, HELLO])
    assert manager.plugins["hello"].status == "loaded"
    assert manager.plugins["runtime-cpu"].status == "blocked"
    assert any("nope" in w and "hello" in w for w in manager.warnings)


def test_unknown_name_mentions_plugins_that_did_not_load():
    manager = PluginManager(Policy(disabled=frozenset({"hello"})), [CPU, HELLO])
    with pytest.raises(KeyError, match=r"Installed but not loaded: hello \(blocked\)"):
        manager.get("engines", "echo")


def test_same_plugin_name_twice_fails_the_second():
    clash = PluginSource("hello", "swift_dupe.plugin", "swift-other", "0.1")
    manager = PluginManager(Policy(), [HELLO, clash])
    failed = [i for i in manager.plugins.values() if i.status == "failed"]
    assert len(failed) == 1 and "already used by swift-hello" in failed[0].reason
