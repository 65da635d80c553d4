"""`swift download`: fetch a model from the Hugging Face Hub (or a mirror) or ModelScope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import click

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.arguments import arg

SUMMARY = "Download a model from the Hugging Face Hub (or HF_ENDPOINT) or ModelScope."


@dataclass
class DownloadArguments:
    model: str = arg(
        help="Model id on the hub (Qwen/Qwen2.5-0.5B-Instruct) or an alias (qwen2_5-0_5b-instruct)."
    )
    hub: Literal["hf", "ms"] = arg(
        "hf",
        help="hf: Hugging Face (HF_ENDPOINT selects a mirror); ms: ModelScope (needs `pip install modelscope`).",
        aliases=("hub_type",),
    )
    revision: str | None = arg(None, help="Branch, tag or commit; default: the hub's default branch.")
    local_dir: str | None = arg(None, help="Write the files into this folder instead of the hub's cache.")


def hub_id_for(model: str, hub: str) -> str:
    """A hub id as given, or the id behind an alias (the ModelScope spelling for `--hub ms`)."""
    if "/" in model:
        return model
    from swift_core.models.resolve import resolve_model

    resolved = resolve_model(model)
    hub_id = resolved.hub_id or resolved.model
    family = resolved.family
    if hub == "ms" and hub_id in family.hf_ids and len(family.ms_ids) == len(family.hf_ids):
        hub_id = family.ms_ids[family.hf_ids.index(hub_id)] or hub_id
    click.echo(f"{model} -> {hub_id}", err=True)
    return hub_id


def run(args: DownloadArguments) -> Any:
    from swift_core.models.download import download_model

    model_id = hub_id_for(args.model, args.hub)
    download_model(model_id, hub=args.hub, revision=args.revision, local_dir=args.local_dir)


download = dataclass_command("download", DownloadArguments, run, SUMMARY)
