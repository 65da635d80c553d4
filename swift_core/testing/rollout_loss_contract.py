"""The contract of online-RL losses (descriptor `scores="rollouts"`: GRPO and its family).

What `swift_core.rl.trainer` relies on, on random completions in groups:

- the factory makes a `swift_core.rl.base.RolloutLoss`;
- `advantages`: one value per completion; a group whose rewards all tie gets advantage 0 and is
  reported as tied; within a group a higher reward gets a higher advantage;
- the loss is a finite scalar with a finite, non-zero gradient on the policy's per-token log-probs,
  and plain-number metrics;
- it follows the advantages: making the completions with a positive advantage likelier (and the
  negative ones less likely) lowers the loss;
- with `beta` > 0 the reference log-probs change the loss (the trainer runs a reference for it),
  and without them the error names the field.
"""

from __future__ import annotations

import math
from typing import Any

from swift_core.testing.contract import Checker, ContractReport

GROUP, GROUPS, TOKENS = 4, 3, 5


def check_rollout_loss(descriptor: Any, config: Any = None, seed: int = 0) -> ContractReport:
    """Run the contract on the loss `descriptor` registers; raise `ContractFailure` at the first
    broken clause. `config`: a `LossConfig` (default: beta 0.04 and the descriptor's default options)."""
    import torch

    from swift_core.align.base import LossConfig
    from swift_core.rl.base import RolloutLogps, RolloutLoss

    origin = f" ({descriptor.distribution})" if descriptor.distribution else ""
    check = Checker(f"alignment loss {descriptor.name!r}{origin}")
    options = descriptor.options() if descriptor.options is not None else None
    config = config if config is not None else LossConfig(beta=0.04, options=options)
    zero_beta = LossConfig(beta=0.0, options=config.options)
    with check.clause("the factory makes a RolloutLoss"):
        loss = descriptor.load()()
        check.require(
            isinstance(loss, RolloutLoss), f"got {type(loss).__name__}, not a swift_core.rl.base.RolloutLoss"
        )

    g = torch.Generator().manual_seed(seed)
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.0] + [0.5] * GROUP + [2.0, 1.0, 0.0, 1.0])
    with check.clause("advantages: one per completion, 0 and tied for a group that ties, ordered by reward"):
        adv = loss.advantages(rewards, GROUP, zero_beta)
        values, tied = torch.as_tensor(adv.values), torch.as_tensor(adv.tied).bool()
        check.require(
            values.shape == rewards.shape,
            f"{tuple(values.shape)} advantages for {rewards.numel()} completions",
        )
        check.require(
            bool(tied[GROUP : 2 * GROUP].all()), "the group of equal rewards is not reported as tied"
        )
        check.require(not bool(tied[:GROUP].any()), "a group with different rewards is reported as tied")
        check.require(
            bool((values[GROUP : 2 * GROUP].abs() < 1e-6).all()), "a tied group has a non-zero advantage"
        )
        check.require(bool(values[0] > values[1]), "a higher reward in a group got no higher advantage")

    count = GROUP * GROUPS
    base = (-1.0 - torch.rand(count, TOKENS, generator=g)).requires_grad_(True)
    mask = torch.ones(count, TOKENS)
    mask[1, 3:] = 0
    ref = (base.detach() + 0.3 * torch.randn(count, TOKENS, generator=g)).detach()

    def inputs(logps: Any, with_ref: bool = True) -> Any:
        return RolloutLogps(
            per_token_logps=logps,
            mask=mask,
            advantages=values,
            old_per_token_logps=base.detach(),
            ref_per_token_logps=ref if with_ref else None,
            num_items_in_batch=mask.sum(),
            max_completion_length=TOKENS,
        )

    def value(logps: Any, cfg: Any = config, with_ref: bool = True) -> float:
        with torch.no_grad():
            return float(loss(inputs(logps, with_ref), cfg).loss)

    with check.clause("a finite scalar loss with a gradient on the per-token log-probs, number metrics"):
        out = loss(inputs(base), config)
        check.require(
            isinstance(out.loss, torch.Tensor) and out.loss.ndim == 0, "the loss is not a scalar tensor"
        )
        check.require(math.isfinite(float(out.loss)), f"the loss is {float(out.loss)}")
        out.loss.backward()
        check.require(base.grad is not None and bool(torch.isfinite(base.grad).all()), "no finite gradient")
        check.require(float(base.grad.abs().sum()) > 0, "the gradient on the log-probs is zero")
        for key, metric in out.metrics.items():
            check.require(math.isfinite(float(metric)), f"metric {key!r} is {metric}")

    with check.clause("the loss falls as positive-advantage completions get likelier, negative ones less"):
        step = 0.02 * torch.sign(values).unsqueeze(1) * mask  # within the clipping range
        check.require(
            value(base.detach() + step, zero_beta) < value(base.detach(), zero_beta),
            "following the advantages did not lower the loss",
        )

    with check.clause(
        "with beta > 0 the reference changes the loss or the advantages; a missing one is named"
    ):
        in_loss = value(base.detach()) != value(base.detach(), zero_beta)
        seq_kl = ((base.detach() - ref) * mask).sum(-1)
        with_kl = torch.as_tensor(loss.advantages(rewards, GROUP, config, seq_kl).values)
        in_advantages = not torch.allclose(
            with_kl, torch.as_tensor(loss.advantages(rewards, GROUP, config).values)
        )
        check.require(
            in_loss or in_advantages, "beta > 0 but the reference is ignored (by the loss and the advantages)"
        )
        if in_loss:
            try:
                loss(inputs(base.detach(), with_ref=False), config)
            except ValueError as exc:
                check.require(
                    "ref_per_token_logps" in str(exc), f"the error does not name ref_per_token_logps: {exc}"
                )
            else:
                check.fail("beta > 0 without ref_per_token_logps did not raise (silently no KL)")
    return check.report
