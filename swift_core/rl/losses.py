"""The GRPO family of losses, computed as TRL 1.16's `GRPOTrainer` / `RLOOTrainer` compute them.

tests/test_grpo_losses.py runs TRL's own `_compute_loss` on the same tensors (within 1e-5). What
differs between the variants is only how the clipped per-token terms are averaged and where the
importance weight is taken:

- grpo: each completion's token mean, then the mean over completions;
- bnpo: the mean over every token of the batch;
- dr_grpo: the sum over tokens divided by (completions x max_completion_length) (no length bias);
- dapo: the sum over tokens divided by the tokens of the whole generation batch;
- gspo: GRPO with one importance weight per sequence (the mean token log-ratio), GSPO's;
- rloo: leave-one-out baselines (the KL to the reference as a reward penalty), a sequence-level
  ratio, and the mean over completions.

Imports torch: loaded only when one of these losses is selected.
"""

from __future__ import annotations

from typing import Any

import torch

from swift_core.align.base import LossConfig, LossOutput
from swift_core.errors import SwiftError
from swift_core.rl.base import Advantages, RolloutLogps, RolloutLoss
from swift_core.rl.options import GRPOOptions

__all__ = ["BNPOLoss", "DAPOLoss", "DrGRPOLoss", "GRPOLoss", "GSPOLoss", "RLOOLoss", "nanstd"]

_STD_EPS = 1e-4  # TRL's: added to the std before dividing


def nanstd(x: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """Bessel-corrected standard deviation ignoring NaN (unscorable completions); NaN below 2 values."""
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    var = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True)
    count = (~torch.isnan(x)).sum(dim=dim, keepdim=True)
    var = var * torch.where(count > 1, count / (count - 1), torch.full_like(var, float("nan")))
    std = var.sqrt()
    return std if keepdim or dim is None else std.squeeze(dim)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    return float((x * mask).sum() / mask.sum().clamp(min=1.0))


class _ClippedPolicyLoss(RolloutLoss):
    """PPO-style clipped surrogate with a per-token KL penalty (k3 estimator) to the reference."""

    sequence_level = False  # one importance weight per sequence (GSPO) instead of per token

    def advantages(self, rewards: Any, group_size: int, config: LossConfig, seq_kl: Any = None) -> Advantages:
        options = config.options_as(GRPOOptions)
        rewards = torch.as_tensor(rewards, dtype=torch.float32)
        grouped = rewards.view(-1, group_size)
        mean = torch.nanmean(grouped, dim=1).repeat_interleave(group_size)
        if options.scale_rewards in ("group", "none"):
            std = (
                nanstd(grouped, dim=1).repeat_interleave(group_size)
                if group_size > 1
                else torch.zeros_like(rewards)
            )
        elif options.scale_rewards == "batch":
            std = nanstd(rewards).expand_as(rewards) if rewards.numel() > 1 else torch.zeros_like(rewards)
        else:
            raise SwiftError(f"--scale_rewards must be group, batch or none (got {options.scale_rewards!r})")
        advantages = rewards - mean
        if options.scale_rewards != "none":
            advantages = advantages / (std + _STD_EPS)
        tied = torch.isclose(std, torch.zeros_like(std))
        return Advantages(torch.nan_to_num(advantages, nan=0.0), tied)

    def _normalise(self, per_token_loss: torch.Tensor, logps: RolloutLogps) -> torch.Tensor:
        mask = logps.mask
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()

    def __call__(self, logps: RolloutLogps, config: LossConfig) -> LossOutput:  # type: ignore[override]
        options = config.options_as(GRPOOptions)
        eps_low = options.epsilon
        eps_high = options.epsilon_high if options.epsilon_high is not None else options.epsilon
        current, mask = logps.per_token_logps, logps.mask.to(logps.per_token_logps.dtype)
        old = logps.old_per_token_logps if logps.old_per_token_logps is not None else current.detach()
        advantages = torch.as_tensor(logps.advantages, device=current.device, dtype=current.dtype)
        advantages = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
        log_ratio = current - old
        if self.sequence_level:
            log_weights = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
        else:
            log_weights = log_ratio
        coef_1 = torch.exp(log_weights)
        coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
        per_token_loss = -torch.min(coef_1 * advantages, coef_2 * advantages)
        metrics: dict[str, float] = {}
        if config.beta != 0.0:
            if logps.ref_per_token_logps is None:
                raise ValueError(
                    f"loss {self.name!r} with beta {config.beta} needs RolloutLogps.ref_per_token_logps"
                )
            diff = logps.ref_per_token_logps - current
            per_token_kl = torch.exp(diff) - diff - 1
            per_token_loss = per_token_loss + config.beta * per_token_kl
            metrics["kl"] = _masked_mean(per_token_kl.detach(), mask)
        loss = self._normalise(per_token_loss, logps)
        low = ((coef_1 < 1 - eps_low) & (advantages < 0)).float()
        high = ((coef_1 > 1 + eps_high) & (advantages > 0)).float()
        if self.sequence_level:
            count = float(low.shape[0]) or 1.0
            metrics["clip_ratio/low_mean"] = float(low.sum()) / count
            metrics["clip_ratio/high_mean"] = float(high.sum()) / count
            metrics["clip_ratio/region_mean"] = float(((low + high) > 0).float().sum()) / count
        else:
            metrics["clip_ratio/low_mean"] = _masked_mean(low, mask)
            metrics["clip_ratio/high_mean"] = _masked_mean(high, mask)
            metrics["clip_ratio/region_mean"] = _masked_mean(((low + high) > 0).float(), mask)
        return LossOutput(loss=loss, chosen_rewards=advantages.squeeze(-1).detach(), metrics=metrics)


class GRPOLoss(_ClippedPolicyLoss):
    name = "grpo"


class GSPOLoss(_ClippedPolicyLoss):
    name = "gspo"
    sequence_level = True


class BNPOLoss(_ClippedPolicyLoss):
    name = "bnpo"

    def _normalise(self, per_token_loss: torch.Tensor, logps: RolloutLogps) -> torch.Tensor:
        return (per_token_loss * logps.mask).sum() / logps.mask.sum().clamp(min=1.0)


class DrGRPOLoss(_ClippedPolicyLoss):
    name = "dr_grpo"

    def _normalise(self, per_token_loss: torch.Tensor, logps: RolloutLogps) -> torch.Tensor:
        if logps.max_completion_length <= 0:
            raise ValueError("dr_grpo needs RolloutLogps.max_completion_length")
        return (per_token_loss * logps.mask).sum() / (per_token_loss.size(0) * logps.max_completion_length)


class DAPOLoss(_ClippedPolicyLoss):
    name = "dapo"

    def _normalise(self, per_token_loss: torch.Tensor, logps: RolloutLogps) -> torch.Tensor:
        items = logps.num_items_in_batch if logps.num_items_in_batch is not None else logps.mask.sum()
        items = torch.as_tensor(items, dtype=per_token_loss.dtype, device=per_token_loss.device)
        return (per_token_loss * logps.mask).sum() / items.clamp(min=1.0)


class RLOOLoss(RolloutLoss):
    """REINFORCE leave-one-out: each completion's baseline is the mean reward of the others of its
    group; the KL to the reference is a penalty on the reward (first-order, summed per sequence)."""

    name = "rloo"

    def advantages(self, rewards: Any, group_size: int, config: LossConfig, seq_kl: Any = None) -> Advantages:
        rewards = torch.as_tensor(rewards, dtype=torch.float32)
        if config.beta != 0.0 and seq_kl is not None:
            rewards = rewards - config.beta * torch.as_tensor(seq_kl, dtype=torch.float32)
        grouped = rewards.view(-1, group_size)
        std = nanstd(grouped, dim=1) if group_size > 1 else torch.zeros(grouped.shape[0])
        if group_size > 1:
            counts = (~torch.isnan(grouped)).sum(dim=1, keepdim=True)
            baselines = (torch.nansum(grouped, dim=1, keepdim=True) - grouped) / (counts - 1)
            advantages = rewards - baselines.view(-1)
        else:
            advantages = torch.zeros_like(rewards)
        tied = torch.isclose(std, torch.zeros_like(std)).repeat_interleave(group_size)
        return Advantages(torch.nan_to_num(advantages, nan=0.0), tied)

    def __call__(self, logps: RolloutLogps, config: LossConfig) -> LossOutput:  # type: ignore[override]
        options = config.options_as(GRPOOptions)
        eps_low = options.epsilon
        eps_high = options.epsilon_high if options.epsilon_high is not None else options.epsilon
        current, mask = logps.per_token_logps, logps.mask.to(logps.per_token_logps.dtype)
        old = logps.old_per_token_logps if logps.old_per_token_logps is not None else current.detach()
        seq, old_seq = (current * mask).sum(1), (old * mask).sum(1)
        advantages = torch.as_tensor(logps.advantages, device=current.device, dtype=current.dtype)
        coef_1 = torch.exp(seq - old_seq)
        coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
        loss = (-torch.min(coef_1 * advantages, coef_2 * advantages)).mean()
        low = ((coef_1 < 1 - eps_low) & (advantages < 0)).float()
        high = ((coef_1 > 1 + eps_high) & (advantages > 0)).float()
        metrics = {
            "clip_ratio/low_mean": float(low.mean()),
            "clip_ratio/high_mean": float(high.mean()),
            "clip_ratio/region_mean": float(((low + high) > 0).float().mean()),
        }
        if config.beta != 0.0 and logps.ref_per_token_logps is not None:
            metrics["kl"] = _masked_mean((old - logps.ref_per_token_logps).detach(), mask)
        return LossOutput(loss=loss, chosen_rewards=advantages.detach(), metrics=metrics)
