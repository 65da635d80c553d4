"""Arguments of `swift rlhf` (the seed's `--method dpo --beta 0.1` spellings accepted)."""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config.arguments import arg
from swift_core.config.train_args import TrainArguments


@dataclass(kw_only=True)
class RLHFArguments(TrainArguments):
    rlhf_type: str = arg(
        "dpo",
        help="An alignment loss: dpo, robust, ipo, hinge, simpo, orpo, cpo, kto, rm (reward model), or a plugin's",
        aliases=("method",),
    )
    beta: float = arg(0.1, help="Strength of the KL regularisation (DPO family), or the reward scale")
    label_smoothing: float = arg(0.0, help="cDPO: assumed rate of flipped preference labels")
    simpo_gamma: float = arg(0.5, help="SimPO: target reward margin")
    cpo_alpha: float = arg(1.0, help="CPO: weight of the NLL term on chosen answers")
    rpo_alpha: float | None = arg(None, help="Add this weight times the NLL of chosen answers to any loss")
    desirable_weight: float = arg(1.0, help="KTO: weight of desirable examples")
    undesirable_weight: float = arg(1.0, help="KTO: weight of undesirable examples")
    ref_model: str | None = arg(
        None, help="Reference model folder (default: the adapter disabled, or a frozen copy)"
    )
    center_rewards_coefficient: float | None = arg(
        None,
        help="Reward models: add this weight times mean((r_chosen + r_rejected)^2) to centre the rewards",
    )
    precompute_ref_log_probs: bool = arg(False, help="Compute the reference log-probs once, before training")
