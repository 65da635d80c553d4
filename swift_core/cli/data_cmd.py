"""`swift data preview`: exactly what training will see, row by row."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Literal

import click

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.arguments import arg
from swift_core.config.common import DataArguments, ModelArguments

TRAIN_OPEN, TRAIN_CLOSE = "⟦", "⟧"


@dataclass(kw_only=True)
class PreviewArguments(ModelArguments, DataArguments):
    n: int = arg(3, help="How many rows to show")
    mode: Literal["sft", "pt"] = arg("sft", help="sft: loss on assistant turns; pt: loss on every token")
    json: bool = arg(False, help="Print input_ids, labels and text per row as JSON lines")
    color: bool | None = arg(None, help="Colour the trained parts (default: when printing to a terminal)")


def preview_rows(args: PreviewArguments) -> list[dict[str, Any]]:
    """Encode the first `n` rows as training would; used by the command and the tests."""
    from swift_core.datasets.encode import IGNORE_INDEX, encode_rows
    from swift_core.datasets.loader import load_rows
    from swift_core.errors import SwiftError
    from swift_core.models.loading import load_tokenizer, template_for
    from swift_core.models.resolve import resolve_model

    if not args.dataset:
        raise SwiftError("--dataset is required")
    from swift_core.models.remote_code import decide_trust_remote_code

    resolved = resolve_model(args.model, args.model_type)
    trust = decide_trust_remote_code(resolved.model, resolved.family, args.trust_remote_code)
    tokenizer = load_tokenizer(resolved.model, trust_remote_code=trust)
    template = template_for(args.template or resolved.family.template, tokenizer)
    loaded = load_rows(
        args.dataset,
        skip_bad_rows=args.skip_bad_rows,
        seed=args.seed,
        modalities=resolved.family.modalities,
        family=resolved.family.name,
    )
    if loaded.bad_rows:
        click.echo(loaded.bad_rows_summary(), err=True)
    rows = loaded.rows[: args.n]
    encoded = encode_rows(
        template,
        tokenizer,
        rows,
        mode=args.mode,
        max_length=args.max_length,
        truncation=args.truncation_strategy,
    )
    out = []
    for enc in encoded:
        if enc is None:
            out.append(
                {"skipped": f"longer than --max_length {args.max_length} (truncation_strategy delete)"}
            )
            continue
        spans: list[tuple[str, bool]] = []
        start = 0
        for i in range(1, len(enc.input_ids) + 1):
            if i == len(enc.input_ids) or (enc.labels[i] != IGNORE_INDEX) != (
                enc.labels[start] != IGNORE_INDEX
            ):
                spans.append((tokenizer.decode(enc.input_ids[start:i]), enc.labels[start] != IGNORE_INDEX))
                start = i
        out.append(
            {
                "input_ids": enc.input_ids,
                "labels": enc.labels,
                "text": "".join(t for t, _ in spans),
                "spans": spans,
                "num_tokens": len(enc),
                "num_trained": enc.trained_tokens,
                "template": template.name,
                "family": resolved.family.name,
            }
        )
    return out


def _preview(args: PreviewArguments) -> None:
    rows = preview_rows(args)
    if args.json:
        for row in rows:
            click.echo(json.dumps({k: v for k, v in row.items() if k != "spans"}, ensure_ascii=False))
        return
    color = sys.stdout.isatty() if args.color is None else args.color
    for i, row in enumerate(rows):
        click.echo(f"── row {i + 1} " + "─" * 40)
        if "skipped" in row:
            click.echo(f"(skipped: {row['skipped']})")
            continue
        click.echo(
            f"family {row['family']}, template {row['template']}: {row['num_tokens']} tokens, {row['num_trained']} trained"
        )
        parts = []
        for text, trained in row["spans"]:
            if trained:
                parts.append(
                    click.style(text, fg="green", underline=True)
                    if color
                    else f"{TRAIN_OPEN}{text}{TRAIN_CLOSE}"
                )
            else:
                parts.append(text)
        click.echo("".join(parts), color=color)
    if not color:
        click.echo(f"(trained parts are between {TRAIN_OPEN} and {TRAIN_CLOSE})")


@click.group()
def data() -> None:
    """Inspect datasets as training sees them."""


data.add_command(
    dataclass_command(
        "preview",
        PreviewArguments,
        _preview,
        "Show rows rendered by the template, the trained parts marked, with token counts.",
    )
)
