"""The plugin manager: built-ins, entry points, policy, registries and the listing.

Built-in plugins (`swift_core.builtin.BUILTIN_PLUGINS`) and external ones (entry-point group
`swift`) go through the same path: the policy decides first (a blocked plugin's module is never
imported), then the module is imported (a failure is recorded, not raised), then its registration
hooks fill the registries. One plugin's failure never takes the others or the CLI down.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from swift_core import hookspecs
from swift_core.descriptors import KINDS
from swift_core.errors import SwiftError
from swift_core.policy import CORE_DISTRIBUTION, Policy
from swift_core.registry import Registries

logger = logging.getLogger("swift_core")


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from, known before anything is imported."""

    name: str
    value: str  # "package.module" or "package.module:object"
    distribution: str
    version: str
    builtin: bool = False


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    module: str
    builtin: bool
    status: str = "blocked"  # loaded | blocked | failed
    reason: str = ""
    hooks: list[str] = field(default_factory=list)
    capabilities: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "status": self.status,
            "reason": self.reason,
            "hooks": self.hooks,
            "capabilities": self.capabilities,
        }


def builtin_sources() -> list[PluginSource]:
    from swift_core import __version__
    from swift_core.builtin import BUILTIN_PLUGINS

    return [
        PluginSource(n, v, CORE_DISTRIBUTION, __version__, builtin=True) for n, v in BUILTIN_PLUGINS.items()
    ]


def entry_point_sources() -> list[PluginSource]:
    sources = []
    for ep in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        sources.append(
            PluginSource(
                ep.name,
                ep.value,
                dist.metadata["Name"] if dist is not None else "",
                dist.version if dist is not None else "",
            )
        )
    return sources


def _import_plugin_object(value: str) -> Any:
    module_name, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


class PluginManager:
    """Loads plugins under a policy and owns the registries they fill."""

    def __init__(self, policy: Policy | None = None, sources: Iterable[PluginSource] | None = None):
        self.policy = policy if policy is not None else Policy.from_env()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.registries = Registries()
        self.plugins: dict[str, PluginInfo] = {}
        self.warnings: list[str] = []
        all_sources = list(sources) if sources is not None else builtin_sources() + entry_point_sources()
        self._load(all_sources)
        self._register_capabilities()

    # -- loading ---------------------------------------------------------------------------------

    def _load(self, sources: list[PluginSource]) -> None:
        known = {s.name for s in sources} | {s.distribution for s in sources if s.distribution}
        unknown = self.policy.unknown_load_names(known)
        if unknown:
            self._warn(
                f"SWIFT_LOAD_PLUGINS names unknown plugins: {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(known)) or '(none)'}"
            )
        for src in sources:
            info = PluginInfo(src.name, src.distribution, src.version, src.value, src.builtin)
            if src.name in self.plugins:
                other = self.plugins[src.name]
                info.status, info.reason = (
                    "failed",
                    (f"plugin name {src.name!r} is already used by {other.distribution or other.module}"),
                )
                self.plugins[f"{src.name} ({src.distribution or src.value})"] = info
                continue
            self.plugins[src.name] = info
            decision = self.policy.check(src.name, src.distribution, src.version, src.builtin)
            if not decision.allowed:
                info.status, info.reason = "blocked", decision.reason
                continue
            try:
                obj = _import_plugin_object(src.value)
                self.pm.register(obj, name=src.name)
            except Exception as exc:  # a broken plugin is reported and skipped
                info.status, info.reason = "failed", f"{type(exc).__name__}: {exc}"
                self._warn(
                    f"plugin {src.name!r} ({src.distribution or src.value}) failed to load: {info.reason}"
                )
                continue
            info.status = "loaded"
            info.hooks = sorted(impl.name for impl in self._hookcallers_of(src.name))

    def _hookcallers_of(self, plugin_name: str) -> list[Any]:
        plugin = self.pm.get_plugin(plugin_name)
        return list(self.pm.get_hookcallers(plugin) or []) if plugin is not None else []

    def _register_capabilities(self) -> None:
        unloaded = [f"{i.name} ({i.status})" for i in self.plugins.values() if i.status != "loaded"]
        for kind in KINDS.values():
            registry = self.registries[kind.name]
            registry.unloaded_plugins = unloaded
            caller = getattr(self.pm.hook, kind.hook)
            for impl in caller.get_hookimpls():
                info = self.plugins[impl.plugin_name]
                if info.status != "loaded":
                    continue
                collected: list[Any] = []

                def register(
                    descriptor: Any = None, /, _kind=kind, _collected=collected, **kwargs: Any
                ) -> None:
                    if descriptor is None:
                        descriptor = _kind.descriptor(**kwargs)
                    _collected.append(descriptor)

                try:
                    impl.function(register=register)
                    for d in collected:
                        self.registries.add(kind.name, d.with_origin(info.name, info.distribution))
                except Exception as exc:
                    registry.remove_plugin(info.name)
                    info.status, info.reason = "failed", f"{kind.hook}: {exc}"
                    self._warn(f"plugin {info.name!r} failed in {kind.hook}: {exc}")
                    continue
                if collected:
                    info.capabilities[kind.name] = sorted(d.name for d in collected)
        # A plugin that failed late loses whatever it registered in earlier kinds too.
        for info in self.plugins.values():
            if info.status == "failed" and info.capabilities:
                for kind_name in info.capabilities:
                    self.registries[kind_name].remove_plugin(info.name)
                info.capabilities = {}
                plugin = self.pm.get_plugin(info.name)
                if plugin is not None:
                    self.pm.unregister(plugin)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        logger.warning(message)

    # -- queries ---------------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """Call lifecycle hooks: `manager.hook.after_train(trainer=..., output_dir=..., args=...)`."""
        return self.pm.hook

    def registry(self, kind: str) -> Any:
        return self.registries[kind]

    def get(self, kind: str, name: str) -> Any:
        return self.registries[kind].get(name)

    def load(self, kind: str, name: str) -> Any:
        return self.registries[kind].load(name)

    def add_commands(self, cli: Any) -> None:
        """Let loaded plugins add subcommands; a failing plugin is reported and skipped."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:
                info = self.plugins.get(impl.plugin_name)
                if info is not None:
                    info.status, info.reason = "failed", f"register_commands: {exc}"
                self._warn(f"plugin {impl.plugin_name!r} failed in register_commands: {exc}")

    def listing(self, include_builtin: bool = True) -> list[PluginInfo]:
        return [i for i in self.plugins.values() if include_builtin or not i.builtin]


_MANAGER: PluginManager | None = None
_MANAGER_KEY: tuple[str, ...] | None = None


def _env_key() -> tuple[str, ...]:
    return tuple(
        os.environ.get(k, "\0") for k in ("SWIFT_POLICY", "SWIFT_LOAD_PLUGINS", "SWIFT_DISABLE_PLUGINS")
    )


def get_plugin_manager() -> PluginManager:
    """The process-wide manager, built from the environment (so every worker agrees)."""
    global _MANAGER, _MANAGER_KEY
    key = _env_key()
    if _MANAGER is None or key != _MANAGER_KEY:
        _MANAGER, _MANAGER_KEY = PluginManager(), key
    return _MANAGER


def reset_plugin_manager() -> None:
    global _MANAGER, _MANAGER_KEY
    _MANAGER, _MANAGER_KEY = None, None


__all__ = ["PluginManager", "PluginInfo", "PluginSource", "SwiftError", "get_plugin_manager"]
