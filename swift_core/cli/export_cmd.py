"""`swift export --adapters DIR --merge_lora true`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.arguments import arg
from swift_core.errors import SwiftError


@dataclass(kw_only=True)
class ExportArguments:
    adapters: str | None = arg(
        None, help="A complete checkpoint folder written by swift sft/pt/rlhf", aliases=("ckpt_dir",)
    )
    model: str | None = arg(None, help="Base model (default: the one in the checkpoint's args.json)")
    merge_lora: bool = arg(False, help="Merge the adapter into the base weights")
    output_dir: str | None = arg(None, help="Where to write (default: CHECKPOINT-merged)")
    torch_dtype: str | None = arg(
        None, help="float32, bfloat16 or float16 (default: the training dtype)", aliases=("dtype",)
    )


def _export(args: ExportArguments) -> Any:
    if not args.merge_lora:
        raise SwiftError(
            "nothing to do: pass --merge_lora true (quantized export comes with the quantizer plugins)"
        )
    if not args.adapters:
        raise SwiftError("--merge_lora needs --adapters CHECKPOINT")
    from swift_core.export.merge import merge_adapter

    merge_adapter(args.adapters, args.output_dir, args.model, args.torch_dtype)


export = dataclass_command("export", ExportArguments, _export, "Merge LoRA adapters into full models.")
