"""What sits on top of a model's layers, as data: a language-model head or a reward head.

Training, loading, serving, scoring and export must agree on the head of a model: which
transformers auto class loads it, which config values it needs, which pad token its batches use
and whether it writes text at all. Each of them asks the `HeadKind` instead of comparing a string,
so a new kind of head is one more entry here, not an `if` in four packages.

A reward model is transformers' `AutoModelForSequenceClassification` with one output. That head
reads the score at the last token that is not `config.pad_token_id`, so batches must be padded
with exactly the config's pad id, when training and when scoring; both take it from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError


@dataclass(frozen=True)
class HeadKind:
    name: str  # recorded in args.json ("head")
    auto_class: str  # the transformers auto class that loads such a model
    scores: str  # what a loss computes from it (AlignmentLossDescriptor.scores)
    generates: bool  # True: it writes text (an engine serves it); False: it scores sequences
    architecture_suffix: str  # how config.json's `architectures` names such a model
    description: str  # in messages: "a reward model (...)"
    usage: str  # in messages: what to do with such a model instead
    num_labels: int | None = None  # a classification head's outputs (a config override)
    # Where the pad id of its batches comes from, in order (the first the tokenizer has; else 0).
    pad_sources: tuple[str, ...] = ("pad_token_id",)

    def model_class(self) -> Any:
        import transformers

        return getattr(transformers, self.auto_class)

    def pad_token_id(self, tokenizer: Any) -> int:
        for source in self.pad_sources:
            value = getattr(tokenizer, source, None)
            if value is not None:
                return int(value)
        return 0

    def config_overrides(self, tokenizer: Any) -> dict[str, Any]:
        """`from_pretrained` keywords that give a checkpoint this head (none for a causal LM)."""
        if self.num_labels is None:
            return {}
        return {"num_labels": self.num_labels, "pad_token_id": self.pad_token_id(tokenizer)}

    def refuse_other(self, found: HeadKind, what: str) -> None:
        """Raise a user error when `what` (a model or checkpoint) has another head than this one.
        Heads that do the same job (a vision-language model writes text as a causal LM does) agree."""
        if (found.generates, found.scores) != (self.generates, self.scores):
            raise SwiftError(f"{what} is {found.description}, not {self.description}: {found.usage}")


CAUSAL_LM = HeadKind(
    name="causal_lm",
    auto_class="AutoModelForCausalLM",
    scores="logps",
    generates=True,
    architecture_suffix="ForCausalLM",
    description="a language model (it writes answers)",
    usage="chat with it, serve it or answer a dataset with swift infer / swift deploy",
)
REWARD = HeadKind(
    name="reward",
    auto_class="AutoModelForSequenceClassification",
    scores="reward",
    generates=False,
    architecture_suffix="ForSequenceClassification",
    description="a reward model (a one-output sequence-classification head)",
    usage="it scores answers instead of writing them. Give swift infer --val_dataset with rows that end "
    "with an answer (preference rows score both answers)",
    num_labels=1,
    pad_sources=("pad_token_id", "eos_token_id"),
)
# A vision-language model (Qwen2-VL): a causal LM fed image features next to the text; a family
# names it (`ModelFamily.head`), since its `...ForConditionalGeneration` architecture is loaded by
# transformers' image-text-to-text auto class, not AutoModelForCausalLM.
VISION_LM = HeadKind(
    name="vision_lm",
    auto_class="AutoModelForImageTextToText",
    scores="logps",
    generates=True,
    architecture_suffix="VLForConditionalGeneration",
    description="a vision-language model (it writes answers about images and text)",
    usage="chat with it, serve it or answer a dataset with swift infer / swift deploy",
)
HEADS: tuple[HeadKind, ...] = (CAUSAL_LM, REWARD, VISION_LM)


def head_named(name: str) -> HeadKind:
    for head in HEADS:
        if head.name == name:
            return head
    raise SwiftError(f"unknown model head {name!r}; known: {', '.join(h.name for h in HEADS)}")


def head_for_family(family: Any, head: HeadKind) -> HeadKind:
    """The head a command's `head` becomes for `family`: a family that names its own head for
    writing text (`ModelFamily.head`, e.g. "vision_lm") gets it instead of the causal LM."""
    name = getattr(family, "head", "") or ""
    if name and head.generates:
        return head_named(name)
    return head


def head_for_scores(scores: str) -> HeadKind:
    """The head an alignment loss trains (its descriptor's `scores`)."""
    for head in HEADS:
        if head.scores == scores:
            return head
    raise SwiftError(f"no model head computes {scores!r}; known: {', '.join(h.scores for h in HEADS)}")


def head_of_architectures(architectures: Iterable[str]) -> HeadKind | None:
    """The head config.json's `architectures` names (None when it names none Swift knows)."""
    for head in HEADS:
        if any(str(a).endswith(head.architecture_suffix) for a in architectures):
            return head
    return None


def head_of_folder(folder: str | Path) -> HeadKind | None:
    """The head a local model folder's config.json names (None: no folder, no config, unknown)."""
    path = Path(str(folder)).expanduser() / "config.json"
    if not str(folder) or not path.is_file():
        return None
    try:
        architectures = json.loads(path.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return None
    return head_of_architectures(architectures)
