"""`swift eval`: score predictions files, evaluate models on tasks and benchmarks, or run
lm-evaluation-harness against `swift deploy` (swift_core.eval)."""

from __future__ import annotations

from typing import Any

import click

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.eval.arguments import EvalArguments

REPEATABLE = ("--model", "--model_outputs", "--dataset")


def merge_repeated(argv: list[str]) -> list[str]:
    """`--model A --model B` as `--model A B`: the parser keeps the last value of a repeated flag."""
    merged: dict[str, list[str]] = {}
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in REPEATABLE:
            j = i + 1
            while j < len(argv) and not argv[j].startswith("--"):
                j += 1
            if token in merged:
                merged[token].extend(argv[i + 1 : j])
            else:
                merged[token] = list(argv[i + 1 : j])
                out.append(token)
            i = j
            continue
        out.append(token)
        i += 1
    result: list[str] = []
    for token in out:
        result.append(token)
        if token in merged:
            result.extend(merged[token])
    return result


def _eval(args: EvalArguments) -> Any:
    from swift_core.eval.runner import run_eval

    run_eval(args)


_inner = dataclass_command(
    "eval",
    EvalArguments,
    _eval,
    "Score predictions files, evaluate models on task files and benchmarks, or run lm-evaluation-harness.",
)


def _callback(argv: tuple[str, ...]) -> Any:
    return _inner.callback(tuple(merge_repeated(list(argv))))  # type: ignore[misc]


eval_command = click.Command(
    "eval",
    callback=_callback,
    params=[click.Argument(["argv"], nargs=-1, type=click.UNPROCESSED)],
    help=_inner.help,
    short_help=_inner.short_help,
    add_help_option=False,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
eval_command.args_cls = EvalArguments  # type: ignore[attr-defined]  # the web UI's form (swift_core.webui.forms)
