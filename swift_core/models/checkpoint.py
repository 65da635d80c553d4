"""A Swift checkpoint folder, read once: `Checkpoint.read(folder)`.

`swift sft/pt/rlhf` write, into every checkpoint, the resolved arguments (`args.json`: base model,
family, template, tuner, head, ...) and, last of all, the marker `swift_checkpoint.json`
(`swift_core.train.outputs`). A folder without the marker is one a killed run left half-written:
nothing reads it as finished. Inference, every engine, scoring and export read a checkpoint
through this type, so the keys of args.json are spelled here only, and checkpoints written by
older versions (no `head`, no `tuner_type`) keep loading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError
from swift_core.models.heads import CAUSAL_LM, HeadKind, head_for_scores, head_named, head_of_folder

MARKER = "swift_checkpoint.json"
ARGS_FILE = "args.json"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"


def is_complete(checkpoint: Path) -> bool:
    return (Path(checkpoint) / MARKER).is_file()


def is_swift_checkpoint(folder: str | Path) -> bool:
    """A folder Swift wrote (it has args.json), complete or not."""
    return (Path(str(folder)).expanduser() / ARGS_FILE).is_file()


def require_complete(checkpoint: str | Path) -> Path:
    path = Path(checkpoint)
    if not path.is_dir():
        raise SwiftError(f"checkpoint {path} does not exist")
    if not is_complete(path):
        raise SwiftError(
            f"checkpoint {path} is incomplete (no {MARKER}): the run that wrote it was interrupted. "
            "Use an earlier checkpoint, or --resume_from_checkpoint auto to pick the latest complete one."
        )
    return path


def read_args(checkpoint: str | Path) -> dict[str, Any]:
    """The resolved arguments a checkpoint was trained with (args.json)."""
    path = Path(checkpoint) / ARGS_FILE
    if not path.is_file():
        raise SwiftError(f"{checkpoint} has no {ARGS_FILE}: is it a Swift checkpoint?")
    return read_json_object(path)


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object (args.json, adapter_config.json): user errors otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SwiftError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SwiftError(f"{path}: expected a JSON object")
    return data


def _head(args: dict[str, Any], folder: Path, saves_adapter: bool) -> HeadKind:
    """args.json's `head`; older checkpoints: the loss's `scores`, else the weights' config.json."""
    if args.get("head"):
        return head_named(str(args["head"]))
    if args.get("scores"):
        return head_for_scores(str(args["scores"]))
    found = None if saves_adapter else head_of_folder(folder)
    return found or CAUSAL_LM


@dataclass(frozen=True)
class Checkpoint:
    """What a complete checkpoint folder holds, as typed attributes."""

    path: Path
    base_model: str | None  # the model it was trained from (args.json `model_dir`)
    family: str | None  # the model family (`family`), i.e. --model_type
    template: str | None  # the chat template it was trained with
    tuner: str  # the tuner that wrote it (`tuner_type`)
    saves_adapter: bool  # an adapter next to a base model (True) or full weights (False)
    head: HeadKind
    torch_dtype: str | None  # the training dtype
    args: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)  # all of args.json

    @classmethod
    def read(cls, folder: str | Path) -> Checkpoint:
        """The checkpoint in `folder`; a missing folder, an incomplete checkpoint or a folder
        without args.json is a user error."""
        path = require_complete(Path(str(folder)).expanduser())
        args = read_args(path)
        saves_adapter = bool(args.get("saves_adapter", True))
        return cls(
            path=path,
            base_model=str(args["model_dir"]) if args.get("model_dir") else None,
            family=args.get("family"),
            template=args.get("template"),
            tuner=str(args.get("tuner_type") or "lora"),
            saves_adapter=saves_adapter,
            head=_head(args, path, saves_adapter),
            torch_dtype=args.get("torch_dtype"),
            args=args,
        )

    @classmethod
    def find(cls, folder: str | Path) -> Checkpoint | None:
        """`read(folder)` when Swift wrote the folder, else None (a hub id, a plain model folder)."""
        return cls.read(folder) if is_swift_checkpoint(folder) else None

    @property
    def has_adapter(self) -> bool:
        """An adapter checkpoint with its peft folder (adapter_config.json) in place."""
        return self.saves_adapter and (self.path / ADAPTER_CONFIG).is_file()

    @property
    def adapter_path(self) -> str | None:
        return str(self.path) if self.has_adapter else None

    @property
    def tokenizer_path(self) -> str | None:
        """The tokenizer saved with the checkpoint, if any (Trainer saves it beside the weights)."""
        return str(self.path) if (self.path / TOKENIZER_CONFIG).is_file() else None

    def weights(self, base_model: str | None = None) -> str:
        """The folder (or hub id) `from_pretrained` loads: the base model of an adapter checkpoint
        (`base_model` overrides the one args.json names), the checkpoint itself when it holds full
        weights."""
        if not self.has_adapter:
            return str(self.path)
        base = base_model or self.base_model
        if not base:
            raise SwiftError(f"{self.path}/{ARGS_FILE} does not name the base model; pass --model")
        return str(base)

    def require_adapter(self, what: str, hint: str) -> None:
        """Refuse a full-weights checkpoint where an adapter is needed: `what` starts the message,
        `hint` (what to do instead) ends it."""
        if not self.saves_adapter:
            raise SwiftError(
                f"{what}: {self.path} holds full weights (tuner {self.tuner!r}), not an adapter: {hint}"
            )


def model_head(model: str, base_model: str | None = None) -> HeadKind:
    """The head of what `--model`/`--adapters` name: a checkpoint's recorded one, else the one the
    model folder's (or the given base model's) config.json names, else a causal LM."""
    checkpoint = Checkpoint.find(model)
    if checkpoint is not None:
        return checkpoint.head
    for folder in (model, base_model or ""):
        found = head_of_folder(folder)
        if found is not None:
            return found
    return CAUSAL_LM
