"""The `swift` entry point.

Commands are imported lazily (a table of module paths and one-line helps) so that `swift --help`
never imports torch. Global plugin options are applied to the environment before any plugin
loads, so child processes (torchrun workers) inherit the same plugin decisions.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from swift_core import __version__
from swift_core.errors import SwiftError

# name -> ("module:attr", one-line help). Commands of later pipelines are added here as they land.
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("swift_core.cli.plugins_cmd:plugins", "List, install and scaffold plugins."),
    "env": ("swift_core.cli.env_cmd:env", "Versions, runtimes, plugins and policy: what a bug report needs."),
    "sft": (
        "swift_core.cli.train_cmd:sft",
        "Supervised fine-tuning (LoRA, QLoRA, full, ...): loss on assistant turns.",
    ),
    "pt": ("swift_core.cli.train_cmd:pt", "Pre-training / continued pre-training: loss on every token."),
    "rlhf": (
        "swift_core.cli.rlhf_cmd:rlhf",
        "Preference alignment (DPO, IPO, SimPO, ORPO, CPO, KTO, ...) with loss plugins.",
    ),
    "infer": (
        "swift_core.cli.infer_cmd:infer",
        "Chat with a model or adapter, or run batch inference over a dataset.",
    ),
    "deploy": (
        "swift_core.cli.deploy_cmd:deploy",
        "Serve a model behind an OpenAI-compatible API (any engine plugin).",
    ),
    "export": (
        "swift_core.cli.export_cmd:export",
        "Merge LoRA adapters into a full model, and/or quantize it (--quant_method).",
    ),
    "quantize": (
        "swift_core.cli.export_cmd:quantize",
        "Quantize a model or checkpoint with a quantizer plugin (AWQ, GPTQ, FP8, bnb, GGUF, ...).",
    ),
    "eval": (
        "swift_core.cli.eval_cmd:eval_command",
        "Evaluate: score predictions files, models on benchmarks, or lm-evaluation-harness via deploy.",
    ),
    "data": ("swift_core.cli.data_cmd:data", "Preview datasets exactly as training will see them."),
    "download": (
        "swift_core.cli.download_cmd:download",
        "Download a model from the Hugging Face hub or ModelScope.",
    ),
    "plan": (
        "swift_core.cli.plan_cmd:plan",
        "Per-device memory of a training run for each strategy (DDP, ZeRO, FSDP), and what makes it fit.",
    ),
    # The web UI sits above the CLI (its forms are these commands), so its command lives with it.
    "web-ui": (
        "swift_core.webui.command:web_ui",
        "Train, watch, chat, export and deploy from a browser (a local job service).",
    ),
}

GLOBAL_MULTI_OPTIONS = {"--policy": "SWIFT_POLICY", "--disable-plugin": "SWIFT_DISABLE_PLUGINS"}


def apply_global_options(argv: list[str]) -> None:
    """Move `--policy`/`--disable-plugin` (before the subcommand) into the environment."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("-"):
            break  # the subcommand: its own options are its own
        key, eq, value = token.partition("=")
        if key in GLOBAL_MULTI_OPTIONS:
            if not eq:
                if i + 1 >= len(argv):
                    return  # click reports the missing value
                value = argv[i + 1]
                i += 1
            env = GLOBAL_MULTI_OPTIONS[key]
            sep = os.pathsep if env == "SWIFT_POLICY" else ","
            if env == "SWIFT_POLICY":
                value = os.path.abspath(value)
            os.environ[env] = sep.join(filter(None, [os.environ.get(env, ""), value]))
        i += 1


class _Formatter(logging.Formatter):
    """`level: message`, then the traceback of a record logged with one (a server's 500)."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        return text


class SwiftGroup(click.Group):
    """Core commands from a lazy table, plus the commands plugins add through `register_commands`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._plugins_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        from swift_core.plugins import get_plugin_manager

        collector = _CommandCollector()
        get_plugin_manager().add_commands(collector)
        for name, command in collector.commands.items():
            if name in CORE_COMMANDS:
                logging.getLogger("swift_core").warning(
                    f"a plugin's command {name!r} clashes with the core command of that name; it is ignored"
                )
                continue
            self.add_command(command, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return sorted(set(CORE_COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in CORE_COMMANDS:
            module_name, _, attr = CORE_COMMANDS[name][0].partition(":")
            return getattr(importlib.import_module(module_name), attr)
        self._add_plugin_commands()
        return self.commands.get(name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from swift_core.errors import did_you_mean

            ctx.fail(f"no such command {name!r}.{did_you_mean(name, self.list_commands(ctx))}")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in CORE_COMMANDS:
                rows.append((name, CORE_COMMANDS[name][1]))
            else:
                cmd = self.commands[name]
                rows.append((name, cmd.get_short_help_str(limit=80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class _CommandCollector:
    """What `register_commands(cli)` receives: a stand-in with click.Group's `add_command`."""

    def __init__(self) -> None:
        self.commands: dict[str, click.Command] = {}

    def add_command(self, command: click.Command, name: str | None = None) -> None:
        self.commands[name or command.name or ""] = command

    def command(self, *args: Any, **kwargs: Any) -> Any:
        def decorator(f: Any) -> click.Command:
            cmd = click.command(*args, **kwargs)(f)
            self.add_command(cmd)
            return cmd

        return decorator


@click.group(cls=SwiftGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="swift", message="%(prog)s %(version)s")
@click.option(
    "--policy",
    "policy",
    multiple=True,
    metavar="PATH",
    expose_value=False,
    help="Plugin policy file (TOML); adds to SWIFT_POLICY.",
)
@click.option(
    "--disable-plugin",
    "disable_plugin",
    multiple=True,
    metavar="NAME",
    expose_value=False,
    help="Do not load this plugin (repeatable).",
)
def cli() -> None:
    """Swift: fine-tune, align, quantize, evaluate and serve LLMs.

    Every capability is a plugin: see `swift plugins list`.
    """


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("swift_core")
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
    apply_global_options(args)
    from swift_core.distributed.ranks import quiet_unless_main

    quiet_unless_main()  # under torchrun, libraries' notices once (rank 0), not once per rank
    from swift_core.cli.library_logs import sort_library_logs

    sort_library_logs()  # libraries' notices that are not the user's business, dropped or explained
    try:
        cli.main(args=args, prog_name="swift", standalone_mode=False)
    except SwiftError as exc:
        # A finished run or a Ctrl-C is reported plainly; anything else is the user's error.
        click.echo(f"{'Error: ' if exc.exit_code not in (0, 130) else ''}{exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:
        # A full disk, a read-only or forbidden folder is the machine's state, not a bug: one line.
        from swift_core.train.outputs import describe_write_error

        message = describe_write_error(exc)
        if message is None:
            raise
        click.echo(f"Error: {message}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
