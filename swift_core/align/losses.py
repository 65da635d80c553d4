"""The built-in alignment losses (registered by `swift_core.builtin.alignment_losses`).

Each loss is checked against TRL 1.16 on the same log-probabilities (tests/test_alignment_losses.py)
and docs/alignment_losses.md gives the formulas. This module imports torch: it is loaded only when a
loss is selected (the descriptors name these classes as strings).

`PreferenceLoss` is the base of every built-in loss and may be used by plugins too: it checks that
the trainer supplied the fields the loss reads and adds the optional `rpo_alpha` NLL term, once for
all losses. A subclass implements `compute`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
import torch.nn.functional as F

from swift_core.align.base import AlignmentLoss, LossConfig, LossOutput, PreferenceLogps, PreferenceScores
from swift_core.align.options import (
    CPOOptions,
    KTOOptions,
    RewardModelOptions,
    SimPOOptions,
    SmoothingOptions,
)
from swift_core.errors import SwiftError

__all__ = [
    "BradleyTerryLoss",
    "CPOLoss",
    "DPOLoss",
    "HingeLoss",
    "IPOLoss",
    "KTOLoss",
    "ORPOLoss",
    "PreferenceLoss",
    "RobustDPOLoss",
    "SimPOLoss",
    "average_logps",
    "chosen_nll_loss",
    "log1mexp",
]

_PAIRED_REFERENCE = ("chosen_logps", "rejected_logps", "ref_chosen_logps", "ref_rejected_logps")


def average_logps(logps: torch.Tensor, lengths: Any) -> torch.Tensor:
    """Summed log-probabilities divided by the number of answer tokens (at least 1)."""
    lengths = torch.as_tensor(lengths, device=logps.device)
    return logps / lengths.to(logps.dtype).clamp(min=1.0)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, stable on both sides of -log 2 (as TRL's ORPO)."""
    t = -0.6931471805599453
    return torch.where(x < t, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def _desirable(logps: PreferenceLogps, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(logps.labels, device=device).bool()


def chosen_nll_loss(logps: PreferenceLogps) -> torch.Tensor:
    """The batch NLL of the chosen answers: one cross-entropy over all their tokens.

    `chosen_nll` holds per-example token means; they are weighted by `nll_tokens` (default
    `chosen_lengths`), which is what a single `CrossEntropyLoss` over the batch gives (TRL's CPO,
    ORPO and DPO "sft" term). Without lengths the per-example means are averaged. For unpaired data
    (`labels` set) only the desirable examples count.
    """
    nll = logps.chosen_nll
    if nll is None:
        raise ValueError("this loss needs PreferenceLogps.chosen_nll (the chosen answers' NLL)")
    nll = torch.as_tensor(nll)
    weights = logps.nll_tokens if logps.nll_tokens is not None else logps.chosen_lengths
    if nll.ndim == 0:
        return nll
    if logps.labels is not None:
        keep = _desirable(logps, nll.device)
        nll = nll[keep]
        weights = torch.as_tensor(weights, device=nll.device)[keep] if weights is not None else None
    if weights is None:
        return nll.mean()
    weights = torch.as_tensor(weights, device=nll.device).to(nll.dtype)
    return (nll * weights).sum() / weights.sum().clamp(min=1.0)


def _smoothed_sigmoid(logits: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """-(1 - ls) log sigmoid(beta x) - ls log sigmoid(-beta x): the sigmoid loss, conservative when ls > 0."""
    return (
        -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    )


class PreferenceLoss(AlignmentLoss):
    """Checks the inputs, calls `compute`, then adds `rpo_alpha * NLL(chosen)` when configured."""

    # The PreferenceLogps fields `compute` reads; a missing one is the trainer's bug, named here.
    required: tuple[str, ...] = ("chosen_logps", "rejected_logps")

    def __call__(self, logps: PreferenceLogps, config: LossConfig) -> LossOutput:
        missing = [f for f in self.required if getattr(logps, f, None) is None]
        if missing:
            raise ValueError(
                f"alignment loss {self.name!r} needs PreferenceLogps fields {', '.join(missing)}"
            )
        out = self.compute(logps, config)
        if config.rpo_alpha is not None:
            nll = chosen_nll_loss(logps)
            out.loss = out.loss + config.rpo_alpha * nll
            out.metrics["rpo_nll"] = float(nll.detach())
        return out

    @abstractmethod
    def compute(self, logps: PreferenceLogps, config: LossConfig) -> LossOutput: ...


class _ReferencePairLoss(PreferenceLoss):
    """A loss of the two log-ratios log pi/pi_ref of the chosen and rejected answers."""

    required = _PAIRED_REFERENCE

    def compute(self, logps: PreferenceLogps, config: LossConfig) -> LossOutput:
        chosen_logratios = logps.chosen_logps - logps.ref_chosen_logps
        rejected_logratios = logps.rejected_logps - logps.ref_rejected_logps
        losses = self.per_pair(chosen_logratios, rejected_logratios, logps, config)
        return LossOutput(
            loss=losses.mean(),
            chosen_rewards=config.beta * chosen_logratios.detach(),
            rejected_rewards=config.beta * rejected_logratios.detach(),
        )

    @abstractmethod
    def per_pair(
        self,
        chosen_logratios: torch.Tensor,
        rejected_logratios: torch.Tensor,
        logps: PreferenceLogps,
        config: LossConfig,
    ) -> torch.Tensor: ...


class DPOLoss(_ReferencePairLoss):
    """Sigmoid DPO; cDPO when `label_smoothing` > 0."""

    name = "dpo"

    def per_pair(self, chosen_logratios, rejected_logratios, logps, config):
        ls = config.options_as(SmoothingOptions).label_smoothing
        if not 0.0 <= ls < 1.0:
            raise SwiftError(f"dpo: label_smoothing must lie in [0, 1), got {ls}")
        return _smoothed_sigmoid(chosen_logratios - rejected_logratios, config.beta, ls)


class RobustDPOLoss(_ReferencePairLoss):
    """Robust DPO (rDPO): an unbiased loss under label noise of rate `label_smoothing`."""

    name = "robust"

    def per_pair(self, chosen_logratios, rejected_logratios, logps, config):
        ls = config.options_as(SmoothingOptions).label_smoothing
        if not 0.0 <= ls < 0.5:
            raise SwiftError(f"robust: label_smoothing (the label flip rate) must lie in [0, 0.5), got {ls}")
        h = chosen_logratios - rejected_logratios
        clean = -(1 - ls) * F.logsigmoid(config.beta * h)
        flipped = -ls * F.logsigmoid(-config.beta * h)
        return (clean - flipped) / (1 - 2 * ls)


class IPOLoss(_ReferencePairLoss):
    """IPO on per-token average log-ratios (as TRL; confirmed with the IPO authors)."""

    name = "ipo"
    required = (*_PAIRED_REFERENCE, "chosen_lengths", "rejected_lengths")

    def per_pair(self, chosen_logratios, rejected_logratios, logps, config):
        delta = average_logps(chosen_logratios, logps.chosen_lengths) - average_logps(
            rejected_logratios, logps.rejected_lengths
        )
        return (delta - 1 / (2 * config.beta)) ** 2


class HingeLoss(_ReferencePairLoss):
    """SLiC-style hinge on the DPO margin: relu(1 - beta * h)."""

    name = "hinge"

    def per_pair(self, chosen_logratios, rejected_logratios, logps, config):
        return torch.relu(1 - config.beta * (chosen_logratios - rejected_logratios))


class SimPOLoss(PreferenceLoss):
    """SimPO: reference-free, length-normalised log-probs, target margin `simpo_gamma`."""

    name = "simpo"
    required = ("chosen_logps", "rejected_logps", "chosen_lengths", "rejected_lengths")

    def compute(self, logps, config):
        chosen = average_logps(logps.chosen_logps, logps.chosen_lengths)
        rejected = average_logps(logps.rejected_logps, logps.rejected_lengths)
        options = config.options_as(SimPOOptions)
        logits = (chosen - rejected) - options.simpo_gamma / config.beta
        losses = _smoothed_sigmoid(logits, config.beta, options.label_smoothing)
        return LossOutput(
            loss=losses.mean(),
            chosen_rewards=config.beta * chosen.detach(),
            rejected_rewards=config.beta * rejected.detach(),
        )


class CPOLoss(PreferenceLoss):
    """CPO: sigmoid on beta * (log pi(chosen) - log pi(rejected)) plus `cpo_alpha` * NLL(chosen)."""

    name = "cpo"

    def compute(self, logps, config):
        logits = logps.chosen_logps - logps.rejected_logps
        options = config.options_as(CPOOptions)
        loss = _smoothed_sigmoid(logits, config.beta, options.label_smoothing).mean()
        metrics = {}
        if options.cpo_alpha:
            nll = chosen_nll_loss(logps)
            loss = loss + options.cpo_alpha * nll
            metrics["nll_loss"] = float(nll.detach())
        return LossOutput(
            loss=loss,
            chosen_rewards=config.beta * logps.chosen_logps.detach(),
            rejected_rewards=config.beta * logps.rejected_logps.detach(),
            metrics=metrics,
        )


class ORPOLoss(PreferenceLoss):
    """ORPO: NLL(chosen) - beta * mean log sigmoid(log odds ratio of the average log-probs)."""

    name = "orpo"
    required = ("chosen_logps", "rejected_logps", "chosen_lengths", "rejected_lengths", "chosen_nll")

    def compute(self, logps, config):
        chosen = average_logps(logps.chosen_logps, logps.chosen_lengths).float()
        rejected = average_logps(logps.rejected_logps, logps.rejected_lengths).float()
        log_odds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
        ratio = F.logsigmoid(log_odds)
        nll = chosen_nll_loss(logps)
        return LossOutput(
            loss=nll - (config.beta * ratio).mean(),
            chosen_rewards=config.beta * chosen.detach(),
            rejected_rewards=config.beta * rejected.detach(),
            metrics={
                "nll_loss": float(nll.detach()),
                "log_odds_ratio": float(ratio.detach().mean()),  # TRL's names and meanings
                "log_odds_chosen": float(log_odds.detach().mean()),
            },
        )


class KTOLoss(PreferenceLoss):
    """KTO on unpaired examples: `labels` marks the desirable ones, `kl` is the reference point."""

    name = "kto"
    required = ("chosen_logps", "ref_chosen_logps", "labels", "kl")

    def compute(self, logps, config):
        logratios = logps.chosen_logps - logps.ref_chosen_logps
        desirable = _desirable(logps, logratios.device)
        kl = torch.as_tensor(logps.kl, device=logratios.device).to(logratios.dtype).detach().clamp(min=0)
        chosen_logratios = logratios[desirable]
        rejected_logratios = logratios[~desirable]
        options = config.options_as(KTOOptions)
        chosen_losses = 1 - torch.sigmoid(config.beta * (chosen_logratios - kl))
        rejected_losses = 1 - torch.sigmoid(config.beta * (kl - rejected_logratios))
        losses = torch.cat(
            (options.desirable_weight * chosen_losses, options.undesirable_weight * rejected_losses), 0
        )
        return LossOutput(
            loss=losses.nanmean(),
            chosen_rewards=config.beta * chosen_logratios.detach(),
            rejected_rewards=config.beta * rejected_logratios.detach(),
            metrics={"kl": float(kl.reshape(-1).mean())},
        )


class BradleyTerryLoss(AlignmentLoss):
    """A reward model's loss: -log sigmoid(r_chosen - r_rejected), the Bradley-Terry likelihood of
    the preference, optionally plus `center_rewards_coefficient * mean((r_chosen + r_rejected)^2)`
    (Eisenstein et al. 2023) so that rewards stay centred on zero.

    The reported rewards are the head's scores themselves (no beta: there is no policy ratio).
    """

    name = "rm"

    def __call__(self, scores: PreferenceScores, config: LossConfig) -> LossOutput:
        if not isinstance(scores, PreferenceScores):
            raise SwiftError(
                f"the {self.name!r} loss scores sequences with a reward head; its descriptor must say "
                f"scores='reward' (got {type(scores).__name__})"
            )
        if config.rpo_alpha is not None:
            raise SwiftError("--rpo_alpha adds an NLL term to a policy; a reward model has none")
        chosen, rejected = scores.chosen.float(), scores.rejected.float()
        loss = -F.logsigmoid(chosen - rejected).mean()
        coefficient = config.options_as(RewardModelOptions).center_rewards_coefficient
        if coefficient:
            loss = loss + coefficient * torch.mean((chosen + rejected) ** 2)
        return LossOutput(loss=loss, chosen_rewards=chosen.detach(), rejected_rewards=rejected.detach())
