"""The alignment-loss interface.

A loss plugin registers an `AlignmentLossDescriptor` (with `needs_reference` and `paired`) whose
factory returns an `AlignmentLoss`. The preference trainer computes the sequence log-probabilities
once per batch (one concatenated forward for chosen and rejected), hands them over as
`PreferenceLogps`, and reads back the loss and the implied rewards. A reward-model loss (descriptor
`scores="reward"`) gets the scores of a sequence-classification head as `PreferenceScores`
instead. The trainer never looks at the loss's name: what it needs to know is on the descriptor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class LossConfig:
    """What a loss is given besides the log-probabilities.

    `beta` and `rpo_alpha` apply to every loss (the command's own `--beta`/`--rpo_alpha`);
    `options` is the loss's own options (its descriptor's `options` dataclass, filled from the
    flags). A loss reads them with `config.options_as(MyOptions)`, which gives the defaults when
    the caller passed none.
    """

    beta: float = 0.1
    rpo_alpha: float | None = None  # an optional SFT (NLL) term on chosen answers, added to any loss
    options: Any = None

    def options_as(self, options_class: type[T]) -> T:
        from swift_core.config.options import options_for

        return options_for(self.options if self.options is not None else object(), options_class)


@dataclass
class PreferenceLogps:
    """Per-example tensors of shape (batch,), all on the same device.

    `*_logps` are sums of token log-probabilities over the answer tokens; `*_lengths` the number of
    answer tokens (for length-normalised losses such as SimPO and ORPO); `chosen_nll` the mean
    token negative log-likelihood of the chosen answers (for rpo_alpha / CPO / ORPO) and
    `nll_tokens` the number of tokens each of those means is over (default: `chosen_lengths`): the
    batch NLL is their token-weighted mean, i.e. one cross-entropy over all the batch's chosen
    tokens, as TRL computes it. For unpaired data (KTO) the "chosen" fields hold every example and
    `labels` says which are desirable; `kl` is the batch estimate of KL(policy || reference) KTO
    uses as its reference point.
    """

    chosen_logps: Any
    rejected_logps: Any = None
    ref_chosen_logps: Any = None
    ref_rejected_logps: Any = None
    chosen_lengths: Any = None
    rejected_lengths: Any = None
    chosen_nll: Any = None
    nll_tokens: Any = None
    labels: Any = None
    kl: Any = None


@dataclass
class PreferenceScores:
    """What a reward-model loss (descriptor `scores="reward"`) gets: one scalar per sequence.

    `chosen` and `rejected` have shape (batch,): the sequence-classification head's output at the
    last token of prompt + chosen answer and prompt + rejected answer.
    """

    chosen: Any
    rejected: Any


@dataclass
class LossOutput:
    loss: Any  # scalar tensor
    chosen_rewards: Any  # (batch,) implied rewards of the chosen (or desirable) answers
    rejected_rewards: Any = None
    metrics: dict[str, float] = field(default_factory=dict)


class AlignmentLoss(ABC):
    name: str = ""

    @abstractmethod
    def __call__(self, logps: PreferenceLogps | PreferenceScores, config: LossConfig) -> LossOutput:
        """`PreferenceLogps` for descriptors with scores="logps", `PreferenceScores` for "reward"."""
