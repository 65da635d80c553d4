"""Options that capabilities carry: a plugin adds flags without editing the core.

A descriptor may name an options dataclass (`TunerDescriptor(..., options=LoraOptions)`), whose
fields are declared with `arg()` like any command's. A command that selects capabilities of some
kinds (`swift sft`: tuners and quantizers; `swift rlhf`: also alignment losses) parses the flags of
every installed capability of those kinds on top of its own, so `--lora_rank 16` on the command
line, `lora_rank: 16` in a YAML file and `args.json` all work the same as the core's own fields,
and a plugin blocked by policy takes its options away with it.

Several capabilities may share one options class (the LoRA family) or declare the same field
(`lora_dropout` for LoRA, VeRA and BOFT): a field name is one flag as long as every declaration
agrees on its type and default; a plugin whose declaration disagrees is refused when it registers
(`check_option_conflicts`), naming both plugins, like a duplicate capability name.

A capability reads its options with `options_for(args, MyOptions)`: the typed dataclass, filled
from the parsed flags (defaults for fields the arguments do not carry, e.g. arguments built in
Python without the options).

Why flat flags rather than `--lora.rank`: ms-swift's and peft's spellings (`--lora_rank`,
`--adalora_target_r`, `--bnb_4bit_quant_type`) are what users bring over; a plugin prefixes its
fields with its name by convention (`--mytuner_depth`).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING
from typing import Any, TypeVar

from swift_core.config.option_schema import (
    CAPABILITIES_KEY,
    GROUP_KEY,
    GROUP_NAMES_KEY,
    check_option_conflicts,
    check_options_class,
    option_fields,
    options_for,
)
from swift_core.errors import SwiftError

T = TypeVar("T")

__all__ = [
    "CAPABILITIES_KEY",
    "GROUP_KEY",
    "GROUP_NAMES_KEY",
    "build_arguments",
    "check_option_conflicts",
    "check_options_class",
    "options_for",
    "with_capability_options",
]


def capability_kinds(cls: type) -> tuple[tuple[str, str], ...]:
    """(kind, descriptor flag) pairs whose options a command's arguments class takes.

    `CAPABILITY_KINDS` entries are a kind (`"tuners"`) or a kind and a boolean descriptor field
    that the capability must have set (`"quantizers:load_time"`: training takes the options of
    quantizers that quantize while loading, export those of `export_time` ones).
    """
    pairs = []
    for entry in getattr(cls, "CAPABILITY_KINDS", ()):
        kind, _, flag = str(entry).partition(":")
        pairs.append((kind, flag))
    return tuple(pairs)


def _group_label(kind: Any, names: list[str], selectors: dict[str, str]) -> str:
    """`--help`'s group title; a command may name the flag that selects a kind otherwise
    (`CAPABILITY_SELECTORS`: `swift rlhf` picks its engine with --rollout_engine)."""
    flag = selectors.get(kind.name, kind.selector)
    selector = f" (--{flag})" if flag else ""
    return f"{kind.label} {', '.join(names)}{selector}"


def with_capability_options(cls: type[T], manager: Any = None) -> type[T]:
    """`cls` plus the option fields of every installed capability of `cls.CAPABILITY_KINDS`.

    The result is a subclass (so `isinstance(args, TrainArguments)` holds), built once per plugin
    manager (default: the process's). Each added field's metadata says which capabilities declare
    it (`--help` groups by it).
    """
    from swift_core.descriptors import KINDS
    from swift_core.plugins import get_plugin_manager

    kinds = capability_kinds(cls)
    if not kinds:
        return cls
    manager = manager if manager is not None else get_plugin_manager()
    cache: dict[type, type] = manager.__dict__.setdefault("_options_classes", {})
    if cls in cache:
        return cache[cls]  # type: ignore[return-value]

    own = {f.name for f in dataclasses.fields(cls)}
    # options class -> (kind, names of the capabilities that use it), in registry order
    users: dict[type, tuple[Any, list[str]]] = {}
    for kind_name, flag in kinds:
        for descriptor in manager.registry(kind_name):
            if descriptor.options is None or (flag and not getattr(descriptor, flag)):
                continue
            entry = users.setdefault(descriptor.options, (KINDS[kind_name], []))
            entry[1].append(descriptor.name)
    # field -> (type, first declaration, its group's label and capability names, all declarers)
    found: dict[str, tuple[Any, dataclasses.Field[Any], str, list[str], list[str]]] = {}
    # Within a kind, the options shared by most capabilities first (the LoRA family's).
    kind_order = [kind for kind, _ in kinds]
    ordered = sorted(users.items(), key=lambda item: (kind_order.index(item[1][0].name), -len(item[1][1])))
    for options, (kind, names) in ordered:
        hints = typing.get_type_hints(options)
        label = _group_label(kind, names, getattr(cls, "CAPABILITY_SELECTORS", {}))
        for f in option_fields(options):
            if f.name in own:
                plugins = sorted({manager.get(kind.name, n).plugin for n in names})
                raise SwiftError(
                    f"option --{f.name} of {kind.label} {', '.join(names)} (plugin {', '.join(plugins)}) clashes "
                    f"with the command's own --{f.name}; disable the plugin with --disable-plugin NAME"
                )
            entry = found.setdefault(f.name, (hints.get(f.name, Any), f, label, names, []))
            entry[4].extend(names)
    fields = []
    for name, (hint, f, label, group_names, names) in found.items():
        metadata = {
            **f.metadata,
            GROUP_KEY: label,
            GROUP_NAMES_KEY: tuple(group_names),
            CAPABILITIES_KEY: tuple(dict.fromkeys(names)),
        }
        if f.default_factory is not MISSING:
            new = dataclasses.field(default_factory=f.default_factory, metadata=metadata)
        else:
            new = dataclasses.field(default=f.default, metadata=metadata)
        fields.append((name, hint, new))
    built = dataclasses.make_dataclass(
        cls.__name__,
        fields,
        bases=(cls,),
        kw_only=True,
    )
    built.__module__ = cls.__module__
    built.__doc__ = cls.__doc__
    cache[cls] = built
    return built  # type: ignore[return-value]


def build_arguments(cls: type[T], manager: Any = None, **values: Any) -> T:
    """Arguments built in Python with capability options: `build_arguments(TrainArguments, model=..., lora_rank=4)`."""
    full = with_capability_options(cls, manager)
    try:
        return full(**values)
    except TypeError as exc:
        raise SwiftError(f"{cls.__name__}: {exc}") from None
