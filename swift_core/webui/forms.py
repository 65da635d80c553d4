"""The web UI's forms, built from the CLI's own commands.

Each command offered in the browser is looked up in the CLI (`swift_core.cli.main`), and its
form is the command's arguments dataclass widened with the installed capabilities' options
(`with_capability_options`), described by `describe_fields`: the same source as `--help` and as
the parser, so a field the CLI gains appears in the form, and a plugin blocked by policy takes
its options out of both. Values from a form are turned into the same argv the CLI takes, and
checked by the CLI's own parser before a job starts.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from swift_core.errors import SwiftError

# Commands a job may run, in the order the page lists them. Present only if the CLI has them.
JOB_COMMANDS = ("sft", "pt", "rlhf", "export", "quantize", "eval", "deploy")


def _args_class(command: str) -> type:
    import click

    from swift_core.cli.main import cli

    ctx = click.Context(cli)
    cmd = cli.get_command(ctx, command) if command in JOB_COMMANDS else None
    args_cls = getattr(cmd, "args_cls", None)
    if args_cls is None:
        raise SwiftError(f"unknown command {command!r}; the web UI runs: {', '.join(available_commands())}")
    return args_cls


def available_commands() -> list[str]:
    """The job commands this installation has (a command module that fails to import is left out)."""
    import click

    from swift_core.cli.main import cli

    ctx = click.Context(cli)
    found = []
    for name in JOB_COMMANDS:
        try:
            cmd = cli.get_command(ctx, name)
        except Exception:  # noqa: BLE001 - a broken optional command must not take the page down
            continue
        if getattr(cmd, "args_cls", None) is not None:
            found.append(name)
    return found


def full_class(command: str, manager: Any = None) -> type:
    from swift_core.config.options import with_capability_options

    return with_capability_options(_args_class(command), manager)


def form_schema(command: str, manager: Any = None) -> dict[str, Any]:
    """{command, summary, fields: [...]} for the page to render."""
    from swift_core.config.arguments import describe_fields

    cls = full_class(command, manager)
    return {"command": command, "fields": describe_fields(cls)}


def _field_types(command: str, manager: Any = None) -> dict[str, dict[str, Any]]:
    from swift_core.config.arguments import describe_fields

    return {f["name"]: f for f in describe_fields(full_class(command, manager))}


def _token(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def to_argv(command: str, values: dict[str, Any], manager: Any = None) -> list[str]:
    """The CLI argv (without `swift COMMAND`) of a form's values; fields left at default are dropped."""
    fields = _field_types(command, manager)
    argv: list[str] = []
    for name, value in values.items():
        field = fields.get(name)
        if field is None:
            raise SwiftError(f"{command}: unknown field {name!r}")
        if value is None or value == "" or value == []:
            continue
        if value == field["default"]:
            continue
        if field["list"]:
            items = value if isinstance(value, list) else [value]
            argv += [f"--{name}", *(_token(v) for v in items)]
        else:
            argv += [f"--{name}", _token(value)]
    return argv


def check_argv(command: str, argv: list[str], manager: Any = None) -> Any:
    """Parse argv with the CLI's parser, and check the capabilities it picks are installed.

    A bad form fails here, with the CLI's own message, not minutes later in a job.
    """
    from swift_core.config.arguments import parse_arguments
    from swift_core.descriptors import KINDS
    from swift_core.plugins import get_plugin_manager

    args = parse_arguments(full_class(command, manager), list(argv))
    manager = manager or get_plugin_manager()
    for kind in KINDS.values():
        value = getattr(args, kind.selector, None) if kind.selector else None
        if isinstance(value, str) and value != "auto":
            try:
                manager.registry(kind.name).get(value)
            except SwiftError as exc:
                raise SwiftError(f"--{kind.selector}: {exc}") from None
    return args


def _typed(field: dict[str, Any] | None, token: str) -> Any:
    """A CLI token as the YAML value of its field's type (so `max_steps: 6`, not `'6'`)."""
    kind = field["type"] if field else "str"
    try:
        if kind == "int":
            return int(token)
        if kind == "float":
            return float(token)
        if kind == "bool":
            return token.lower() in ("true", "1", "yes", "y", "on")
        if kind == "json":
            return json.loads(token)
    except ValueError:
        return token
    return token


def preview(command: str, argv: list[str], manager: Any = None) -> dict[str, str]:
    """The equivalent shell command and YAML config (`swift COMMAND config.yaml`) of a job."""
    import yaml

    fields = _field_types(command, manager)
    config: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        key = argv[i][2:]
        vals = []
        i += 1
        while i < len(argv) and not argv[i].startswith("--"):
            vals.append(_typed(fields.get(key), argv[i]))
            i += 1
        field = fields.get(key)
        config[key] = vals if (field and field["list"]) or len(vals) != 1 else vals[0]
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True) if config else ""
    return {"cli": shlex.join(["swift", command, *argv]), "yaml": text}
