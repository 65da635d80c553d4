"""Dataclass-based arguments shared by all commands.

Each command declares its arguments as a dataclass; `parse_arguments` fills it from an optional
YAML/JSON config file (the first positional argument) and then `--flag value` overrides, the
same way for every command. ms-swift's spellings are accepted as aliases so that users can bring
their scripts over. Written here rather than with click options because the argument sets are
large, shared between commands, and must also be readable from config files with one set of
rules and one set of error messages.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, Field
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from swift_core.config.files import is_config_path, load_config_file
from swift_core.errors import SwiftError, nearest

T = TypeVar("T")

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_NONE = {"none", "null"}


def arg(
    default: Any = MISSING, *, help: str = "", aliases: tuple[str, ...] = (), group: str = "", **kwargs: Any
) -> Any:
    """A dataclass field with a help text, alternative spellings and a `--help` group.

    Without `group`, the field's group is the `ARG_GROUP` of the dataclass that declares it.
    """
    metadata = {"help": help, "aliases": tuple(aliases)}
    if group:
        metadata["group"] = group
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        if len(inner) == 1 and len(get_args(tp)) == 2:
            return inner[0], True
    return tp, False


def _is_list(tp: Any) -> bool:
    return get_origin(_unwrap_optional(tp)[0]) in (list, tuple)


def _type_name(tp: Any) -> str:
    tp, optional = _unwrap_optional(tp)
    if get_origin(tp) is Literal:
        name = "{" + ",".join(str(a) for a in get_args(tp)) + "}"
    elif get_origin(tp) in (list, tuple):
        name = f"{_type_name(get_args(tp)[0])}..."
    else:
        name = getattr(tp, "__name__", str(tp)).upper()
    return name


def _convert_scalar(value: Any, tp: Any, where: str) -> Any:
    tp, optional = _unwrap_optional(tp)
    if isinstance(value, str) and value.strip().lower() in _NONE and (optional or tp is Any):
        return None
    if value is None:
        if optional:
            return None
        raise SwiftError(f"{where}: a value is required")
    if tp is Any:
        return value
    if get_origin(tp) is Literal:
        choices = get_args(tp)
        for choice in choices:
            if str(choice) == str(value):
                return choice
        raise SwiftError(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise SwiftError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise SwiftError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            f = float(str(value))
        except ValueError:
            raise SwiftError(f"{where}: expected an integer, got {value!r}") from None
        if not f.is_integer():
            raise SwiftError(f"{where}: expected an integer, got {value!r}")
        return int(f)
    if tp is float:
        if isinstance(value, bool):
            raise SwiftError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SwiftError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise SwiftError(f"{where}: expected a string, got {type(value).__name__}")
        return str(value)
    if tp is dict or get_origin(tp) is dict:
        if isinstance(value, dict):
            return value
        raise SwiftError(f"{where}: expected a mapping, got {value!r}")
    return value


def _convert(value: Any, tp: Any, where: str) -> Any:
    inner, optional = _unwrap_optional(tp)
    if get_origin(inner) in (list, tuple):
        if value is None and optional:
            return None
        items = value if isinstance(value, (list, tuple)) else [value]
        elem = get_args(inner)[0] if get_args(inner) else Any
        converted = [_convert_scalar(v, elem, where) for v in items]
        return converted if get_origin(inner) is list else tuple(converted)
    return _convert_scalar(value, tp, where)


class _Spec:
    """Names and aliases of one arguments dataclass."""

    def __init__(self, cls: type):
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        self.cls = cls
        self.hints = _hints(cls)
        self.fields: dict[str, Field[Any]] = {f.name: f for f in dataclasses.fields(cls) if f.init}
        self.lookup: dict[str, str] = {}
        for f in self.fields.values():
            for key in (f.name, *f.metadata.get("aliases", ())):
                self.lookup[key] = f.name
                self.lookup[key.replace("_", "-")] = f.name

    def resolve(self, key: str, where: str) -> str:
        name = self.lookup.get(key)
        if name is None:
            # Another framework's flag for something this command spells otherwise (ms-swift's and
            # TRL's `--use_vllm`): say what to write instead of a nearest name.
            foreign = getattr(self.cls, "FOREIGN_SPELLINGS", {}).get(key.replace("-", "_"))
            close = nearest(key, [k for k in self.lookup if "-" not in k])
            if foreign:
                hint = f"; here: {foreign}."
            else:
                hint = f"; did you mean {'--' if where == 'command line' else ''}{close[0]}?" if close else ""
            shown = f"--{key}" if where == "command line" else repr(key)
            raise SwiftError(f"unknown argument {shown} ({where}){hint} See --help for the list.")
        return name


def _split_cli(argv: list[str], spec: _Spec) -> tuple[str | None, dict[str, Any]]:
    config_path = None
    values: dict[str, Any] = {}
    i = 0
    if argv and is_config_path(argv[0]):
        config_path, i = argv[0], 1
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise SwiftError(f"unexpected argument {token!r}; arguments are given as --name value")
        key, eq, inline = token[2:].partition("=")
        name = spec.resolve(key, "command line")
        tp = spec.hints[name]
        i += 1
        if eq:
            raw: list[str] = [inline]
        else:
            raw = []
            while i < len(argv) and not argv[i].startswith("--"):
                raw.append(argv[i])
                i += 1
        if _is_list(tp):
            if len(raw) == 1 and "," in raw[0] and not raw[0].startswith(("{", "[")):
                raw = [part for part in raw[0].split(",") if part]
            # `--dataset a --dataset b` is `--dataset a b`: a repeated list flag adds, never replaces.
            values[name] = [*values.get(name, []), *raw]
        elif not raw:
            if _unwrap_optional(tp)[0] is bool:
                values[name] = "true"
            else:
                raise SwiftError(f"--{key} needs a value")
        elif len(raw) > 1:
            raise SwiftError(f"--{key} takes one value, got {len(raw)}: {' '.join(raw)}")
        else:
            values[name] = raw[0]
    return config_path, values


def parse_arguments(cls: type[T], argv: list[str]) -> T:
    """Build `cls` from `[config.yaml] --name value ...`: file first, flags override."""
    spec = _Spec(cls)
    config_path, cli_values = _split_cli(list(argv), spec)
    merged: dict[str, tuple[Any, str]] = {}
    if config_path is not None:
        where = f"config file {config_path}"
        for key, value in load_config_file(config_path).items():
            merged[spec.resolve(str(key), where)] = (value, f"{where}, key {key!r}")
    for name, value in cli_values.items():
        merged[name] = (value, f"--{name}")
    kwargs = {name: _convert(value, spec.hints[name], where) for name, (value, where) in merged.items()}
    missing = [
        n
        for n, f in spec.fields.items()
        if n not in kwargs and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise SwiftError(f"missing required argument(s): {', '.join('--' + m for m in missing)}")
    try:
        parsed = cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, SwiftError):
            raise
        raise SwiftError(str(exc)) from None
    object.__setattr__(parsed, EXPLICIT_ATTR, frozenset(kwargs))
    return parsed


EXPLICIT_ATTR = "_explicit_fields"


def explicitly_set(args: Any) -> frozenset[str]:
    """The fields the user gave (flags or config keys), not defaults: how a pipeline tells
    `--use_lora false --tuner_type lora` (a conflict) from `--use_lora false` alone."""
    return frozenset(getattr(args, EXPLICIT_ATTR, ()))


# The order of the commands' own `--help` groups; other groups follow in order of appearance.
GROUP_ORDER = ("model", "data", "training", "tuner", "quantization", "distributed", "output")


def _field_group(cls: type, name: str, f: Field[Any]) -> str:
    """The field's `group`, else the `ARG_GROUP` of the dataclass that declares it."""
    if f.metadata.get("group"):
        return str(f.metadata["group"])
    for klass in cls.__mro__:
        if name in klass.__dict__.get("__annotations__", {}):
            return str(klass.__dict__.get("ARG_GROUP", "") or "")
    return ""


def _default_text(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return "(required)"


def help_groups(cls: type) -> list[tuple[str, list[str]]]:
    """Field names by `--help` group: the command's own groups first, capability options last."""
    from swift_core.config.option_schema import CAPABILITIES_KEY

    spec = _Spec(cls)
    groups: dict[str, list[str]] = {}
    capability_groups: dict[str, list[str]] = {}
    for name, f in spec.fields.items():
        target = capability_groups if f.metadata.get(CAPABILITIES_KEY) else groups
        target.setdefault(_field_group(cls, name, f), []).append(name)
    known = [g for g in GROUP_ORDER if g in groups]
    ordered = known + [g for g in groups if g not in known]
    return [*((g, groups[g]) for g in ordered), *capability_groups.items()]


def format_help(cls: type, *, prog: str, summary: str = "") -> str:
    """The `--help` text of a dataclass command, generated from its fields, in groups."""
    from swift_core.config.option_schema import CAPABILITIES_KEY, GROUP_NAMES_KEY

    spec = _Spec(cls)
    lines = [f"Usage: {prog} [CONFIG.yaml|.json] [--name value ...]", ""]
    if summary:
        lines += [summary, ""]
    lines.append("A config file gives defaults; flags given after it override it.")
    for group, names in help_groups(cls):
        is_capability = bool(spec.fields[names[0]].metadata.get(CAPABILITIES_KEY))
        title = (
            f"Options of {group}"
            if is_capability
            else (f"{group.capitalize()} arguments" if group else "Arguments")
        )
        lines += ["", f"{title}:"]
        for name in names:
            f = spec.fields[name]
            aliases = list(f.metadata.get("aliases", ()))
            text = f.metadata.get("help", "")
            extra = f" [default: {_default_text(f)}]" + (
                f" [aliases: {', '.join('--' + a for a in aliases)}]" if aliases else ""
            )
            group_names = f.metadata.get(GROUP_NAMES_KEY, ())
            shared = [n for n in f.metadata.get(CAPABILITIES_KEY, ()) if n not in group_names]
            if shared:
                extra += f" [also for: {', '.join(shared)}]"
            lines.append(f"  --{name} {_type_name(spec.hints[name])}")
            lines.append(f"      {text}{extra}".rstrip())
    return "\n".join(lines) + "\n"


def as_dict(args: Any) -> dict[str, Any]:
    """The resolved arguments as plain data (written next to checkpoints as args.json)."""
    return dataclasses.asdict(args)


def describe_fields(cls: type) -> list[dict[str, Any]]:
    """The fields of an arguments dataclass as plain data, in `--help` order, for forms.

    The web UI renders its forms from this (and `--help` from the same `_Spec`), so a flag added
    to a command, or an option a capability plugin brings, appears in both at once.
    """
    from swift_core.config.option_schema import CAPABILITIES_KEY

    spec = _Spec(cls)
    out: list[dict[str, Any]] = []
    for group, names in help_groups(cls):
        for name in names:
            f = spec.fields[name]
            tp, optional = _unwrap_optional(spec.hints[name])
            is_list = get_origin(tp) in (list, tuple)
            elem = (get_args(tp) or (Any,))[0] if is_list else tp
            if get_origin(elem) is Literal:
                kind, choices = "choice", [str(c) for c in get_args(elem)]
            else:
                choices = []
                kind = {bool: "bool", int: "int", float: "float", str: "str"}.get(elem, "json")
            default = _default_text(f)
            required = default == "(required)" and f.default is MISSING and f.default_factory is MISSING
            out.append(
                {
                    "name": name,
                    "group": group,
                    "capability_option": bool(f.metadata.get(CAPABILITIES_KEY)),
                    "capabilities": list(f.metadata.get(CAPABILITIES_KEY, ())),
                    "type": kind,
                    "list": is_list,
                    "optional": optional,
                    "choices": choices,
                    "default": None if required else default,
                    "required": required,
                    "help": f.metadata.get("help", ""),
                    "aliases": list(f.metadata.get("aliases", ())),
                }
            )
    return out
