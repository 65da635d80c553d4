"""Argument groups shared by several commands (sft, pt, rlhf, infer, data preview)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from swift_core.config.arguments import arg


@dataclass(kw_only=True)
class ModelArguments:
    ARG_GROUP: ClassVar[str] = "model"

    model: str = arg(
        help="Local folder, hub id (Qwen/Qwen2.5-7B-Instruct) or alias (qwen2_5-7b-instruct)",
        aliases=("model_id_or_path",),
    )
    model_type: str | None = arg(None, help="Model family, when it cannot be inferred from the model")
    template: str | None = arg(
        None, help="Chat template; default: the family's. 'jinja' uses the tokenizer's own"
    )
    trust_remote_code: bool = arg(
        False,
        help="Run the Python code a model folder ships (auto_map; internlm2, minicpm, ...): it runs with "
        "your rights, so only for folders you trust; a policy file can forbid it",
    )


@dataclass(kw_only=True)
class DataArguments:
    ARG_GROUP: ClassVar[str] = "data"

    dataset: list[str] = arg([], help="Files, folders, registered names or hub ids; NAME#N samples N rows")
    max_length: int | None = arg(None, help="Longest sequence in tokens")
    truncation_strategy: Literal["delete", "left", "right"] = arg(
        "delete", help="Rows longer than max_length: delete them, or keep the left or right part"
    )
    skip_bad_rows: bool = arg(False, help="Skip rows that cannot be read or converted, and report them")
    seed: int = arg(42, help="Random seed (sampling, shuffling, initialisation)", aliases=("data_seed",))
