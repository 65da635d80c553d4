"""Merge a trained adapter into its base model and write a plain Hugging Face checkpoint.

The checkpoint is read (`Checkpoint`) and its base model loaded (`models.loader`) exactly as
inference loads them, with the head it was trained with: a reward model (`swift rlhf --rlhf_type
rm`) merges into a sequence-classification model with its score head. The merged folder is
written under a temporary name and renamed when complete (`swift_core.atomic`), so an interrupted
export never leaves a folder that looks like a finished model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from swift_core.atomic import atomic_dir, write_json_atomic
from swift_core.errors import SwiftError
from swift_core.models.checkpoint import ARGS_FILE, MARKER, Checkpoint
from swift_core.train.outputs import mark_complete


def merge_adapter(
    adapters: str,
    output_dir: str | None = None,
    model: str | None = None,
    dtype: str | None = None,
    manager: Any = None,
    *,
    args: Any = None,
    announce: bool = True,
) -> Path:
    """Merge `adapters` into its base and write the result to `output_dir`. `args` (the export
    command's arguments) reaches the `after_export` hook; `announce=False` writes an intermediate
    (quantized export merges first) that is neither announced to plugins nor reported."""
    from swift_core.models.loader import load_weights, prepare_checkpoint
    from swift_core.plugins import get_plugin_manager

    manager = manager or get_plugin_manager()
    checkpoint = Checkpoint.read(adapters)
    checkpoint.require_adapter("swift export --merge_lora", "nothing to merge")
    out = Path(output_dir) if output_dir else checkpoint.path.with_name(checkpoint.path.name + "-merged")
    if out.exists() and any(out.iterdir()):
        raise SwiftError(f"{out} already exists and is not empty")
    prepared = prepare_checkpoint(
        checkpoint,
        base_model=model,
        trust_remote_code=bool(getattr(args, "trust_remote_code", False)),
        manager=manager,
    )
    click.echo(f"merging {checkpoint.path} into {prepared.resolved.model}", err=True)
    tuner = manager.load("tuners", checkpoint.tuner)()
    merged = tuner.merge(
        load_weights(prepared, dtype or checkpoint.torch_dtype or "float32", manager=manager)
    )
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp)
        prepared.tokenizer.save_pretrained(tmp)
        write_json_atomic(
            tmp / ARGS_FILE,
            {
                **checkpoint.args,
                "saves_adapter": False,
                "head": checkpoint.head.name,
                "merged_from": str(checkpoint.path),
                "model_dir": str(out),
            },
        )
        mark_complete(tmp, {"merged_from": str(checkpoint.path)})
    if not announce:
        return out
    manager.hook.after_export(output_dir=str(out), args=args)
    click.echo(f"merged model written to {out} ({MARKER} marks it complete)")
    return out
