"""Built-in online RL: the GRPO family of losses and the built-in reward functions.

Factories are strings: torch loads only when one is selected. The losses are alignment losses with
`scores="rollouts"` (the trainer samples completions and scores them with reward functions), so
`--rlhf_type grpo` picks them as it picks DPO; they differ only in the loss, never by name in the
pipeline.
"""

from __future__ import annotations

from swift_core.descriptors import AlignmentLossDescriptor, RewardFunctionDescriptor
from swift_core.hookspecs import hookimpl
from swift_core.rl.options import (
    FormatRewardOptions,
    GRPOOptions,
    LengthRewardOptions,
    RewardModelRewardOptions,
)

_LOSSES = "swift_core.rl.losses"
_REWARDS = "swift_core.rl.builtin_rewards"

# name, class, description, aliases
ROLLOUT_LOSSES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "grpo",
        "GRPOLoss",
        "GRPO: group-normalised advantages, clipped ratio, each completion's token mean",
        (),
    ),
    ("bnpo", "BNPOLoss", "GRPO with the loss averaged over every token of the batch", ()),
    (
        "dr_grpo",
        "DrGRPOLoss",
        "Dr. GRPO: token sum over completions x max_completion_length (no length bias)",
        (),
    ),
    ("dapo", "DAPOLoss", "DAPO: token-level loss over the generation batch (use --epsilon_high 0.28)", ()),
    ("gspo", "GSPOLoss", "GSPO: GRPO with one importance weight per sequence", ()),
    ("rloo", "RLOOLoss", "RLOO: leave-one-out baselines, sequence ratio, KL as a reward penalty", ()),
)

# name, factory, description, options
REWARD_FUNCTIONS: tuple[tuple[str, str, str, type | None], ...] = (
    (
        "accuracy",
        f"{_REWARDS}:accuracy",
        "1 when the completion's answer equals the row's solution column",
        None,
    ),
    (
        "math",
        f"{_REWARDS}:math_equivalence",
        "1 when the final answer equals the solution as a number (1/2 = 0.5 = 50%)",
        None,
    ),
    (
        "format",
        f"{_REWARDS}:FormatReward",
        "1 when the completion matches --format_pattern",
        FormatRewardOptions,
    ),
    (
        "length",
        f"{_REWARDS}:SoftOverlong",
        "DAPO's soft overlong penalty (0 to -1) near --soft_max_length",
        LengthRewardOptions,
    ),
    (
        "reward_model",
        f"{_REWARDS}:RewardModelReward",
        "a reward model's score (--reward_model, trained by --rlhf_type rm)",
        RewardModelRewardOptions,
    ),
)


@hookimpl
def register_alignment_losses(register):
    for name, cls, description, aliases in ROLLOUT_LOSSES:
        register(
            AlignmentLossDescriptor(
                name=name,
                factory=f"{_LOSSES}:{cls}",
                description=description,
                needs_reference=True,  # when --beta is not 0
                scores="rollouts",
                aliases=aliases,
                options=GRPOOptions,
            )
        )


@hookimpl
def register_reward_functions(register):
    for name, factory, description, options in REWARD_FUNCTIONS:
        register(
            RewardFunctionDescriptor(name=name, factory=factory, description=description, options=options)
        )
