"""The built-in alignment losses' own options (flags of `swift rlhf` while the loss is installed).

Light on purpose: `swift_core.builtin.alignment_losses` imports this at start-up. `--beta` and
`--rpo_alpha` apply to every loss and stay the command's own (`LossConfig.beta`/`rpo_alpha`).
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config.arguments import arg

_SMOOTHING_HELP = "cDPO: assumed rate of flipped preference labels"


@dataclass(kw_only=True)
class SmoothingOptions:
    """DPO and robust DPO."""

    label_smoothing: float = arg(0.0, help=_SMOOTHING_HELP)


@dataclass(kw_only=True)
class SimPOOptions:
    # gamma in the paper (TRL's gamma/beta ratio times beta)
    simpo_gamma: float = arg(0.5, help="SimPO: target reward margin")
    label_smoothing: float = arg(0.0, help=_SMOOTHING_HELP)


@dataclass(kw_only=True)
class CPOOptions:
    cpo_alpha: float = arg(1.0, help="CPO: weight of the NLL term on chosen answers")
    label_smoothing: float = arg(0.0, help=_SMOOTHING_HELP)


@dataclass(kw_only=True)
class KTOOptions:
    desirable_weight: float = arg(1.0, help="KTO: weight of desirable examples")
    undesirable_weight: float = arg(1.0, help="KTO: weight of undesirable examples")


@dataclass(kw_only=True)
class RewardModelOptions:
    center_rewards_coefficient: float | None = arg(
        None,
        help="Reward models: add this weight times mean((r_chosen + r_rejected)^2) to centre the rewards",
    )
