"""The interface of the online-RL losses (descriptor `scores="rollouts"`).

The trainer samples completions, scores them, and hands the loss two things: the group rewards
(`RolloutLoss.advantages` turns them into one advantage per completion: group-normalised for GRPO,
leave-one-out for RLOO) and then the per-token log-probabilities of the completions as
`RolloutLogps` (`RolloutLoss.__call__` gives the loss and its metrics). Variants that differ only in
the loss (token- or sequence-level normalisation, sequence-level importance weights) are separate
loss plugins; the trainer never reads their names. Light: torch is imported by the implementations.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from swift_core.align.base import AlignmentLoss, LossConfig, LossOutput


@dataclass
class RolloutLogps:
    """One batch of sampled completions; tensors of shape (B, T) over completion tokens.

    `per_token_logps` are the policy's (with gradient); `old_per_token_logps` those of the policy
    that sampled (None: the same policy, ratio 1, as when each batch is used for one update);
    `ref_per_token_logps` the reference's (None when `beta` is 0); `mask` is 1 on completion
    tokens that count; `advantages` has shape (B,); `num_items_in_batch` the count of tokens that
    count in the whole generation batch (DAPO's normaliser); `max_completion_length` Dr. GRPO's.
    """

    per_token_logps: Any
    mask: Any
    advantages: Any
    old_per_token_logps: Any = None
    ref_per_token_logps: Any = None
    num_items_in_batch: Any = None
    max_completion_length: int = 0


@dataclass
class Advantages:
    """Per-completion advantages (B,) and, per completion, whether its group's rewards all tie."""

    values: Any
    tied: Any


class RolloutLoss(AlignmentLoss):
    """A GRPO-family loss: advantages from group rewards, then the clipped policy-gradient loss."""

    @abstractmethod
    def advantages(self, rewards: Any, group_size: int, config: LossConfig, seq_kl: Any = None) -> Advantages:
        """`rewards` (B,) in groups of `group_size` consecutive completions of one prompt;
        `seq_kl` (B,) the summed per-token log-ratio to the reference (losses that put the KL into
        the reward read it; None when beta is 0)."""

    @abstractmethod
    def __call__(self, logps: RolloutLogps, config: LossConfig) -> LossOutput:  # type: ignore[override]
        """The loss (scalar, for one micro-batch), `chosen_rewards` the advantages, and metrics
        (`kl`, `clip_ratio/*`)."""
