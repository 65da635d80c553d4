"""The schema of a capability's options: what a valid options class is, when two declarations
of one flag agree, and reading a capability's typed options from parsed arguments.

The lowest layer of the options machinery (it imports nothing of Swift but its errors), so that
descriptors and registries can check options without importing the command-building half
(`swift_core.config.options`), which needs the plugin manager.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from dataclasses import MISSING
from typing import Any, TypeVar

T = TypeVar("T")

# The metadata keys a capability option field carries in a command's arguments class: its
# `--help` group (the first capabilities declaring it) and the names of all that declare it.
GROUP_KEY = "group"
CAPABILITIES_KEY = "capabilities"
GROUP_NAMES_KEY = "group_capabilities"


def check_options_class(options: Any, owner: str) -> None:
    """An options class must be a dataclass whose every field has a default."""
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise ValueError(f"{owner}: options must be a dataclass type, got {options!r}")
    for f in dataclasses.fields(options):
        if f.init and f.default is MISSING and f.default_factory is MISSING:
            raise ValueError(
                f"{owner}: option {f.name!r} of {options.__name__} has no default (a capability's "
                "options apply only when it is chosen, so each needs one)"
            )


def _default(f: dataclasses.Field[Any]) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def field_signature(options: type, f: dataclasses.Field[Any]) -> tuple[str, str]:
    """What two declarations of one flag must agree on: the type and the default."""
    hint = typing.get_type_hints(options).get(f.name, Any)
    return (str(hint).replace("typing.", ""), repr(_default(f)))


def option_fields(options: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(options) if f.init]


def _origin(descriptor: Any) -> str:
    return f"{descriptor.kind_label} {descriptor.name!r} of plugin {descriptor.plugin!r}"


def check_option_conflicts(new: Any, registered: Iterable[Any]) -> None:
    """Refuse `new` when one of its options is declared differently by a registered capability."""
    if new.options is None:
        return
    mine = {f.name: field_signature(new.options, f) for f in option_fields(new.options)}
    for other in registered:
        if other.options is None or other.options is new.options:
            continue
        for f in option_fields(other.options):
            if f.name in mine and mine[f.name] != field_signature(other.options, f):
                theirs = field_signature(other.options, f)
                raise ValueError(
                    f"option --{f.name} of {_origin(new)} ({mine[f.name][0]}, default {mine[f.name][1]}) "
                    f"conflicts with the same option of {_origin(other)} ({theirs[0]}, default {theirs[1]})"
                )


def options_for(args: Any, options: type[T]) -> T:
    """The capability's options as its dataclass, read from parsed arguments (or defaults)."""
    if isinstance(args, options):
        return args
    values = {}
    for f in option_fields(options):
        if hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return options(**values)
