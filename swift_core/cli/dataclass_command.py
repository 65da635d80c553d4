"""Turn an arguments dataclass into a click command.

The command takes `[CONFIG.yaml] --name value ...`, parsed by `swift_core.config.parse_arguments`
with one set of rules for flags and config files, and generates `--help` from the dataclass.
Plugins use it too, so their commands behave like the core's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from swift_core.config.arguments import format_help, parse_arguments
from swift_core.config.options import with_capability_options
from swift_core.errors import SwiftError


def _with_plugin_hint(exc: SwiftError) -> SwiftError:
    """An unknown flag that a plugin of this repository brings names that plugin."""
    import re

    from swift_core.catalog import flag_provider

    found = re.match(r"unknown argument --([\w-]+)", str(exc))
    provider = flag_provider(found.group(1)) if found else None
    if provider is None:
        return exc
    dist, folder = provider
    return SwiftError(
        f"--{found.group(1)} comes with the {dist} plugin, which is not installed or not allowed here "
        f"(see swift plugins list): pip install -e {folder}"
    )


def dataclass_command(name: str, args_cls: type, run: Callable[[Any], Any], summary: str) -> click.Command:
    """`args_cls` may name `CAPABILITY_KINDS`: the options of the installed capabilities of those
    kinds become flags of the command too (and vanish with a plugin that policy blocks)."""

    def callback(argv: tuple[str, ...]) -> Any:
        ctx = click.get_current_context()
        full_cls = with_capability_options(args_cls)
        if any(a in ("-h", "--help") for a in argv):
            click.echo(format_help(full_cls, prog=ctx.command_path, summary=summary), nl=False)
            ctx.exit(0)
        try:
            args = parse_arguments(full_cls, list(argv))
        except SwiftError as exc:
            raise _with_plugin_hint(exc) from None
        return run(args)

    command = click.Command(
        name,
        callback=callback,
        params=[click.Argument(["argv"], nargs=-1, type=click.UNPROCESSED)],
        help=summary,
        short_help=summary,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    # The web UI builds its forms from the same class (swift_core.webui.forms).
    command.args_cls = args_cls  # type: ignore[attr-defined]
    return command
