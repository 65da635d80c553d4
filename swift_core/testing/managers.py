"""Plugin managers for tests: exactly the plugins a test names, under an empty policy.

The process-wide manager (`get_plugin_manager`) loads every installed plugin under the user's
policy; a test that used it would pass or fail depending on what else is installed. These build a
manager from explicit sources instead.
"""

from __future__ import annotations

from typing import Any


def plugin_source(name: str, module: str, distribution: str = "", version: str = "0.0.0") -> Any:
    """A `PluginSource` for a plugin module importable from the test (no entry point needed)."""
    from swift_core.plugins import PluginSource

    return PluginSource(name, module, distribution or name, version)


def plugin_manager(*sources: Any, builtins: bool = True, strict: bool = True) -> Any:
    """A `PluginManager` with the built-in plugins (unless `builtins=False`) and `sources`, under an
    empty policy. With `strict`, a plugin that fails to load raises (naming it and why) instead of
    being skipped as the CLI skips it: a test of a plugin must not pass without the plugin."""
    from swift_core.plugins import PluginManager, builtin_sources
    from swift_core.policy import Policy

    manager = PluginManager(Policy(), [*(builtin_sources() if builtins else []), *sources])
    failed = {i.name: i.reason for i in manager.plugins.values() if i.status != "loaded"}
    if strict and failed:
        raise RuntimeError(f"plugins failed to load: {failed}")
    return manager


def builtin_manager() -> Any:
    """A `PluginManager` with only the built-in plugins."""
    return plugin_manager()
