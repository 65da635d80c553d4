"""Which parts of a vision-language model train: the vision tower (ViT), the aligner (the merger
that projects visual features into the text width) and the language model.

`--freeze_vit` (default: true with an adapter tuner such as LoRA, false with full training),
`--freeze_aligner` (default: as `--freeze_vit`), `--freeze_llm` (default false). An adapter tuner's
`all-linear`/`attn` targets become the linear layers of the parts that train, named in full, so
LoRA lands on the language model only unless told otherwise; a full-weights tuner has the frozen
parts' parameters set to `requires_grad=False` after it is applied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from swift_core.errors import SwiftError

VIT_NAMES = ("visual", "vision_tower", "vision_model")
ALIGNER_NAMES = ("merger", "multi_modal_projector", "mm_projector")
LLM_NAMES = ("language_model", "lm_head")


@dataclass(frozen=True)
class Parts:
    """Module-name prefixes of each part (a prefix P covers P and P.*)."""

    vit: tuple[str, ...]
    aligner: tuple[str, ...]
    llm: tuple[str, ...]


def _find(model: Any, names: tuple[str, ...], within: tuple[str, ...] = ()) -> tuple[str, ...]:
    found: list[str] = []
    for name, _ in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        nested = any(_under(name, p) for p in found)
        inside = not within or any(_under(name, p) for p in within)
        if last in names and not nested and inside:
            found.append(name)
    return tuple(found)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def model_parts(model: Any) -> Parts:
    vit = _find(model, VIT_NAMES)
    if not vit:
        raise SwiftError(
            "this model has no vision tower Swift can find (visual / vision_tower / vision_model)"
        )
    aligner = _find(model, ALIGNER_NAMES, within=vit) or _find(model, ALIGNER_NAMES)
    return Parts(vit=vit, aligner=aligner, llm=_find(model, LLM_NAMES))


@dataclass(frozen=True)
class FreezePlan:
    vit: bool
    aligner: bool
    llm: bool

    @classmethod
    def from_args(cls, args: Any, adapter: bool) -> FreezePlan:
        vit = getattr(args, "freeze_vit", None)
        vit = adapter if vit is None else bool(vit)
        aligner = getattr(args, "freeze_aligner", None)
        aligner = vit if aligner is None else bool(aligner)
        plan = cls(vit=vit, aligner=aligner, llm=bool(getattr(args, "freeze_llm", False)))
        if plan.vit and plan.aligner and plan.llm:
            raise SwiftError(
                "--freeze_vit, --freeze_aligner and --freeze_llm are all true: nothing would train"
            )
        return plan

    def part_of(self, name: str, parts: Parts) -> str:
        """'aligner', 'vit', 'llm' or 'other' for a module or parameter name."""
        if any(_under(name, p) for p in parts.aligner):
            return "aligner"
        if any(_under(name, p) for p in parts.vit):
            return "vit"
        if any(_under(name, p) for p in parts.llm):
            return "llm"
        return "other"

    def trains(self, part: str) -> bool:
        return not {"vit": self.vit, "aligner": self.aligner, "llm": self.llm}.get(part, self.llm)


def tuning_family(model: Any, family: Any, plan: FreezePlan) -> Any:
    """`family` with `all_linear_modules`/`lora_target_modules` as the full names of the linear
    layers of the parts that train: the language model's from the family's names, every linear
    layer of the ViT and of the aligner when those train."""
    import torch

    parts = model_parts(model)
    all_linear: list[str] = []
    attn: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        part = plan.part_of(name, parts)
        if not plan.trains(part) or name.endswith("lm_head"):
            continue
        last = name.rsplit(".", 1)[-1]
        if part == "llm":
            if last in family.all_linear_modules or not family.all_linear_modules:
                all_linear.append(name)
            if last in family.lora_target_modules:
                attn.append(name)
        elif part in ("vit", "aligner"):
            all_linear.append(name)
            attn.append(name)
    if not all_linear:
        raise SwiftError(
            "no linear layer is left to train with these --freeze_vit/--freeze_aligner/--freeze_llm"
        )
    return dataclasses.replace(
        family, all_linear_modules=tuple(all_linear), lora_target_modules=tuple(attn or all_linear)
    )


def freeze_parts(model: Any, plan: FreezePlan) -> int:
    """Frozen parts' parameters set to `requires_grad=False`; returns how many were frozen."""
    parts = model_parts(model)
    frozen = 0
    for name, param in model.named_parameters():
        if param.requires_grad and not plan.trains(plan.part_of(name, parts)):
            param.requires_grad_(False)
            frozen += 1
    return frozen
