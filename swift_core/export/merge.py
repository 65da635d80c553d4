"""Merge a trained adapter into its base model and write a plain Hugging Face checkpoint.

The merged folder is written under a temporary name and renamed when complete, so an
interrupted export never leaves a folder that looks like a finished model. A reward model
(`swift rlhf --rlhf_type rm`) merges into a sequence-classification model with its score head.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from swift_core.align.reward_head import SCORES_KEY, reward_config
from swift_core.errors import SwiftError
from swift_core.runtimes.base import torch_dtype
from swift_core.train.outputs import MARKER, mark_complete, read_args, require_complete, write_json_atomic


def merge_adapter(
    adapters: str,
    output_dir: str | None = None,
    model: str | None = None,
    dtype: str | None = None,
    manager: Any = None,
) -> Path:
    import transformers

    from swift_core.plugins import get_plugin_manager

    manager = manager or get_plugin_manager()
    checkpoint = require_complete(adapters)
    trained = read_args(checkpoint)
    if not trained.get("saves_adapter", True):
        raise SwiftError(
            f"{checkpoint} holds full weights (tuner {trained.get('tuner_type')!r}): nothing to merge"
        )
    base_path = model or trained.get("model_dir")
    if not base_path:
        raise SwiftError(f"{checkpoint}/args.json does not name the base model; pass --model")
    out = Path(output_dir) if output_dir else checkpoint.with_name(checkpoint.name + "-merged")
    if out.exists() and any(out.iterdir()):
        raise SwiftError(f"{out} already exists and is not empty")
    tuner = manager.load("tuners", trained.get("tuner_type", "lora"))()
    base_dtype = torch_dtype(dtype or trained.get("torch_dtype") or "float32")
    click.echo(f"merging {checkpoint} into {base_path}", err=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    # A reward model's checkpoint says so in args.json: its base is loaded with the same head.
    if trained.get(SCORES_KEY) == "reward":
        auto_class, overrides = transformers.AutoModelForSequenceClassification, reward_config(tokenizer)
    else:
        auto_class, overrides = transformers.AutoModelForCausalLM, {}
    try:
        base = auto_class.from_pretrained(base_path, dtype=base_dtype, **overrides)
    except OSError as exc:
        raise SwiftError(f"cannot load the base model {base_path!r}: {exc}") from None
    merged = tuner.merge(tuner.load(base, str(checkpoint)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json_atomic(
            tmp / "args.json",
            {**trained, "saves_adapter": False, "merged_from": str(checkpoint), "model_dir": str(out)},
        )
        mark_complete(tmp, {"merged_from": str(checkpoint)})
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manager.hook.after_export(output_dir=str(out), args=trained)
    click.echo(f"merged model written to {out} ({MARKER} marks it complete)")
    return out
