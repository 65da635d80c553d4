"""`swift download`: fetch a model from the Hugging Face Hub (or a mirror) or ModelScope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.arguments import arg

SUMMARY = "Download a model from the Hugging Face Hub (or HF_ENDPOINT) or ModelScope."


@dataclass
class DownloadArguments:
    model: str = arg(help="Model id on the hub, e.g. Qwen/Qwen2.5-0.5B-Instruct.")
    hub: Literal["hf", "ms"] = arg(
        "hf",
        help="hf: Hugging Face (HF_ENDPOINT selects a mirror); ms: ModelScope (needs `pip install modelscope`).",
        aliases=("hub_type",),
    )
    revision: str | None = arg(None, help="Branch, tag or commit; default: the hub's default branch.")
    local_dir: str | None = arg(None, help="Write the files into this folder instead of the hub's cache.")


def run(args: DownloadArguments) -> Any:
    from swift_core.models.download import download_model

    download_model(args.model, hub=args.hub, revision=args.revision, local_dir=args.local_dir)


download = dataclass_command("download", DownloadArguments, run, SUMMARY)
