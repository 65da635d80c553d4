"""Options of the online-RL losses and of the built-in reward functions (flags of `swift rlhf`).

Light on purpose: the built-in plugin `swift_core.builtin.online_rl` imports this at start-up. The
names are ms-swift's and TRL's (`--num_generations`, `--reward_funcs`, `--epsilon`, ...), so a
GRPO command line brought from either works. `--beta` (the KL weight) stays the command's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config.arguments import arg


@dataclass(kw_only=True)
class GRPOOptions:
    """What every loss of the GRPO family (descriptor `scores="rollouts"`) shares: how completions
    are sampled, which reward functions score them, and the PPO-style clipping."""

    num_generations: int = arg(8, help="GRPO: completions sampled per prompt (the group)")
    max_completion_length: int = arg(64, help="GRPO: most tokens of a sampled completion")
    temperature: float = arg(1.0, help="GRPO: sampling temperature of the rollouts")
    top_p: float = arg(1.0, help="GRPO: nucleus sampling of the rollouts")
    top_k: int = arg(-1, help="GRPO: sample the rollouts from the k likeliest tokens (-1: all)")
    reward_funcs: list[str] = arg(
        [], help="GRPO: reward-function plugins: accuracy, math, format, length, reward_model, ..."
    )
    reward_weights: list[float] = arg([], help="GRPO: weight of each reward function (default: 1 each)")
    epsilon: float = arg(0.2, help="GRPO: clipping range of the probability ratio (low side)")
    epsilon_high: float | None = arg(None, help="GRPO: upper clipping range (default: epsilon; DAPO 0.28)")
    scale_rewards: str = arg("group", help="GRPO: divide advantages by the std of the group, batch, or none")
    rollout_engine: str = arg("transformers", help="GRPO: the engine plugin that samples the completions")
    mask_truncated_completions: bool = arg(
        False, help="GRPO: completions cut at max_completion_length take no part in the loss"
    )
    tied_groups_warning: float = arg(
        0.5, help="GRPO: warn when at least this fraction of groups have all rewards equal (no signal)"
    )


@dataclass(kw_only=True)
class FormatRewardOptions:
    format_pattern: str = arg(
        r"^<think>.*?</think>\s*<answer>.*?</answer>$",
        help="format reward: 1 when the completion matches this regular expression (whole text), else 0",
    )


@dataclass(kw_only=True)
class LengthRewardOptions:
    """DAPO's soft overlong punishment: 0 up to soft_max_length - soft_cache_length tokens, then
    falling linearly to -1 at soft_max_length."""

    soft_max_length: int = arg(
        0, help="length reward: tokens where the penalty reaches -1 (0: max_completion_length)"
    )
    soft_cache_length: int = arg(
        16, help="length reward: tokens before soft_max_length where the penalty starts"
    )


@dataclass(kw_only=True)
class RewardModelRewardOptions:
    reward_model: str | None = arg(
        None,
        help="reward_model reward: a reward model trained by swift rlhf --rlhf_type rm (checkpoint or folder)",
    )
