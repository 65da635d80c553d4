"""Typed registries of descriptors.

One `Registry` per kind (engines, tuners, ...). It refuses a second capability with the same
name or alias and names both plugins; an unknown name lists what is available, the nearest
spelling, and which distribution would provide it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from swift_core.catalog import missing_capability_hint
from swift_core.descriptors import KINDS, Descriptor
from swift_core.errors import DuplicateCapabilityError, UnknownNameError, nearest

D = TypeVar("D", bound=Descriptor)


def _origin(d: Descriptor) -> str:
    return f"plugin {d.plugin!r}" + (f" ({d.distribution})" if d.distribution else "")


class Registry(Generic[D]):
    """Descriptors of one kind, by name and alias."""

    def __init__(self, kind: str, descriptor_type: type[D]):
        self.kind = kind
        self.descriptor_type = descriptor_type
        self._by_name: dict[str, D] = {}
        self._aliases: dict[str, str] = {}
        # Filled by the plugin manager: plugins that are installed but were not loaded.
        self.unloaded_plugins: list[str] = []

    @property
    def label(self) -> str:
        return self.descriptor_type.kind_label

    def add(self, descriptor: D) -> None:
        if not isinstance(descriptor, self.descriptor_type):
            raise TypeError(
                f"{_origin(descriptor)} registered a {type(descriptor).__name__} as a {self.label}; "
                f"expected {self.descriptor_type.__name__}"
            )
        for key in (descriptor.name, *descriptor.aliases):
            existing = self._lookup(key)
            if existing is not None:
                raise DuplicateCapabilityError(
                    f"{self.label} {key!r} is registered twice: by {_origin(existing)} and by "
                    f"{_origin(descriptor)}. Disable one with --disable-plugin NAME."
                )
        self._by_name[descriptor.name] = descriptor
        for alias in descriptor.aliases:
            self._aliases[alias] = descriptor.name

    def remove_plugin(self, plugin: str) -> None:
        """Drop everything one plugin registered (used when its registration hook fails)."""
        for name in [n for n, d in self._by_name.items() if d.plugin == plugin]:
            del self._by_name[name]
        self._aliases = {a: n for a, n in self._aliases.items() if n in self._by_name}

    def _lookup(self, key: str) -> D | None:
        if key in self._by_name:
            return self._by_name[key]
        if key in self._aliases:
            return self._by_name[self._aliases[key]]
        return None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._lookup(key) is not None

    def __iter__(self) -> Iterator[D]:
        return iter(sorted(self._by_name.values(), key=lambda d: d.name))

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def get(self, name: str) -> D:
        found = self._lookup(name)
        if found is None:
            raise UnknownNameError(self.unknown_message(name))
        return found

    def load(self, name: str) -> Any:
        """The factory of the named capability, imported now."""
        return self.get(name).load()

    def unknown_message(self, name: str) -> str:
        keys = [*self._by_name, *self._aliases]
        parts = [f"unknown {self.label} {name!r}."]
        hint = missing_capability_hint(self.kind, self.label, name)
        close = nearest(name, keys)
        if close and not hint:  # a known-but-missing capability is not a misspelling of another
            parts.append(f"Did you mean {close[0]!r}?")
        parts.append(f"Available: {', '.join(self.names()) or '(none)'}.")
        if hint:
            parts.append(hint)
        if self.unloaded_plugins:
            parts.append(
                f"Installed but not loaded: {', '.join(self.unloaded_plugins)} (see swift plugins list)."
            )
        return " ".join(parts)


class Registries:
    """All registries, one per kind of `swift_core.descriptors.KINDS`."""

    def __init__(self) -> None:
        self._registries: dict[str, Registry[Any]] = {
            name: Registry(name, kind.descriptor) for name, kind in KINDS.items()
        }

    def __getitem__(self, kind: str) -> Registry[Any]:
        try:
            return self._registries[kind]
        except KeyError:
            raise UnknownNameError(
                f"unknown registry {kind!r}; known: {', '.join(self._registries)}"
            ) from None

    def __iter__(self) -> Iterator[Registry[Any]]:
        return iter(self._registries.values())

    def add(self, kind: str, descriptor: Descriptor) -> None:
        """Register `descriptor`, refusing options declared differently by another capability."""
        from swift_core.config.option_schema import check_option_conflicts

        if descriptor.options is not None:
            check_option_conflicts(descriptor, (d for registry in self for d in registry))
        self[kind].add(descriptor)
