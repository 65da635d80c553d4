"""Built-in alignment losses. Factories are strings: torch loads only when a loss is selected.

The trainer reads `needs_reference` (load a frozen reference model, or precompute its log-probs),
`paired` (chosen/rejected pairs, or unpaired examples with a desirable label) and `scores` (policy
log-probs, or a reward head's scalar) from these descriptors, never the loss's name.
"""

from __future__ import annotations

from swift_core.align.options import (
    CPOOptions,
    KTOOptions,
    RewardModelOptions,
    SimPOOptions,
    SmoothingOptions,
)
from swift_core.descriptors import AlignmentLossDescriptor
from swift_core.hookspecs import hookimpl

_LOSSES = "swift_core.align.losses"

# name, factory, description, needs_reference, paired, aliases
ALIGNMENT_LOSSES: tuple[tuple[str, str, str, bool, bool, tuple[str, ...]], ...] = (
    ("dpo", f"{_LOSSES}:DPOLoss", "DPO (sigmoid); cDPO with label_smoothing > 0", True, True, ()),
    (
        "robust",
        f"{_LOSSES}:RobustDPOLoss",
        "Robust DPO: unbiased under a label flip rate label_smoothing",
        True,
        True,
        ("dpo_robust",),
    ),
    ("ipo", f"{_LOSSES}:IPOLoss", "IPO: squared loss on per-token average log-ratios", True, True, ()),
    ("hinge", f"{_LOSSES}:HingeLoss", "Hinge (SLiC) on the DPO margin: relu(1 - beta*h)", True, True, ()),
    (
        "simpo",
        f"{_LOSSES}:SimPOLoss",
        "SimPO: reference-free, length-normalised, target margin simpo_gamma",
        False,
        True,
        (),
    ),
    (
        "orpo",
        f"{_LOSSES}:ORPOLoss",
        "ORPO: NLL on chosen plus beta * odds-ratio loss, reference-free",
        False,
        True,
        (),
    ),
    (
        "cpo",
        f"{_LOSSES}:CPOLoss",
        "CPO: sigmoid on the policy margin plus cpo_alpha * NLL on chosen, reference-free",
        False,
        True,
        (),
    ),
    (
        "kto",
        f"{_LOSSES}:KTOLoss",
        "KTO: unpaired desirable/undesirable examples, KL reference point",
        True,
        False,
        (),
    ),
)


# Reward models are trained from pairs with a Bradley-Terry loss on a sequence-classification head.
REWARD_MODEL_LOSS = AlignmentLossDescriptor(
    name="rm",
    factory=f"{_LOSSES}:BradleyTerryLoss",
    description="Reward model: a one-output sequence-classification head, Bradley-Terry loss",
    needs_reference=False,
    paired=True,
    scores="reward",
    aliases=("reward_model", "reward"),
    options=RewardModelOptions,
)

# Each loss's options class (losses not listed take only --beta and --rpo_alpha).
OPTIONS: dict[str, type] = {
    "dpo": SmoothingOptions,
    "robust": SmoothingOptions,
    "simpo": SimPOOptions,
    "cpo": CPOOptions,
    "kto": KTOOptions,
}


@hookimpl
def register_alignment_losses(register):
    for name, factory, description, needs_reference, paired, aliases in ALIGNMENT_LOSSES:
        register(
            AlignmentLossDescriptor(
                name=name,
                factory=factory,
                description=description,
                needs_reference=needs_reference,
                paired=paired,
                aliases=aliases,
                options=OPTIONS.get(name),
            )
        )
    register(REWARD_MODEL_LOSS)
