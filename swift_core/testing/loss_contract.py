"""The alignment-loss contract: what every registered `AlignmentLoss` must do.

The preference trainer never looks at a loss's name: it reads the descriptor's flags (`paired`,
`needs_reference`, `scores`), builds the inputs those flags promise, exactly as
`swift_core.align.trainer` fills them, and trusts the loss with them. So, on random inputs of
that shape:

- the factory makes an `AlignmentLoss`;
- the loss is a finite scalar with a finite gradient reaching the policy's log-probs (or the
  reward head's scores), and `LossOutput` carries tensors of rewards and plain-number metrics;
- it prefers the chosen answer: raising the chosen answers' log-probs (for unpaired data, the
  desirable examples') lowers the loss, and so does lowering the rejected (undesirable) ones;
- a loss whose descriptor says `needs_reference=True` uses the reference log-probs (else the
  trainer builds a reference model for nothing);
- an optional input left out (None) either does not matter or the error names it, so a trainer
  bug (or a flag that promises too little) reads as "needs PreferenceLogps fields X", not as
  "unsupported operand type(s) for -: 'NoneType'". Fields the dataclass requires cannot be missing.

Inputs sit where every sensible loss is still learning: policy log-probs near the reference's
(small log-ratios, margins near zero), so a hinge or a target margin is not already satisfied.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace
from typing import Any

from swift_core.testing.contract import Checker, ContractReport

# How far the preference-direction clause moves the policy: log-probs times these factors (5% more
# or less likely per token). Small on purpose: the clause is about the slope of the loss where it
# starts, not about a target margin (IPO, hinge) a big step could overshoot.
STEP_UP, STEP_DOWN = 0.95, 1.05


def loss_inputs(descriptor: Any, batch: int = 6, seed: int = 0) -> Any:
    """Random `PreferenceLogps` (or `PreferenceScores` for `scores="reward"`) with the fields the
    trainer fills for this descriptor's flags; the policy's tensors require grad."""
    import torch

    from swift_core.align.base import PreferenceLogps, PreferenceScores

    g = torch.Generator().manual_seed(seed)
    if descriptor.scores == "reward":
        chosen, rejected = torch.randn(batch, generator=g), torch.randn(batch, generator=g)
        return PreferenceScores(chosen=chosen.requires_grad_(), rejected=rejected.requires_grad_())

    def answer() -> tuple[Any, Any]:
        lengths = torch.randint(4, 13, (batch,), generator=g)
        logps = -lengths.float() * (1.0 + 2.0 * torch.rand(batch, generator=g))
        return logps, lengths

    def reference(logps: Any) -> Any:
        return (logps + 0.5 * torch.randn(logps.shape, generator=g)).detach()

    chosen, chosen_lengths = answer()
    fields: dict[str, Any] = {"chosen_logps": chosen, "chosen_lengths": chosen_lengths}
    if descriptor.paired:
        rejected, rejected_lengths = answer()
        fields.update(rejected_logps=rejected, rejected_lengths=rejected_lengths)
        if descriptor.needs_reference:
            fields.update(ref_chosen_logps=reference(chosen), ref_rejected_logps=reference(rejected))
    else:
        # Unpaired (KTO): "chosen" holds every example; the first half desirable, the rest not.
        fields["labels"] = torch.arange(batch) < (batch + 1) // 2
        if descriptor.needs_reference:
            fields["ref_chosen_logps"] = reference(chosen)
            fields["kl"] = torch.tensor(0.05)
    logps = PreferenceLogps(**fields)
    return with_policy(logps, chosen=chosen, rejected=fields.get("rejected_logps"))


def with_policy(logps: Any, *, chosen: Any, rejected: Any = None) -> Any:
    """`logps` with new policy log-probs (leaf tensors requiring grad) and the chosen NLL that
    follows from them, as the trainer computes it: -logps / lengths."""
    chosen = chosen.detach().clone().requires_grad_()
    changes: dict[str, Any] = {
        "chosen_logps": chosen,
        "chosen_nll": -chosen / logps.chosen_lengths.clamp(min=1),
    }
    if rejected is not None:
        changes["rejected_logps"] = rejected.detach().clone().requires_grad_()
    return dataclasses.replace(logps, **changes)


def loss_config(descriptor: Any, *, beta: float = 0.1, rpo_alpha: float | None = None, **options: Any) -> Any:
    """A `LossConfig` as `swift rlhf` builds it: the shared `beta`/`rpo_alpha`, and the loss's own
    options (its descriptor's `options` dataclass with `options` changed; defaults otherwise)."""
    from swift_core.align.base import LossConfig

    options_class = getattr(descriptor, "options", None)
    if options_class is not None:
        values: Any = options_class(**options)
    else:
        values = SimpleNamespace(**options) if options else None
    return LossConfig(beta=beta, rpo_alpha=rpo_alpha, options=values)


def check_alignment_loss(
    name: str, manager: Any = None, *, config: Any = None, batch: int = 6, seed: int = 0
) -> ContractReport:
    """Run the loss contract on the alignment loss registered as `name`; raise `ContractFailure`
    at the first broken clause, else return the report. `config`: the `LossConfig` (default:
    `loss_config(descriptor)`, the defaults); `manager`: the plugin manager that registers the loss
    (default: the built-ins)."""
    from swift_core.testing.managers import builtin_manager

    manager = manager if manager is not None else builtin_manager()
    descriptor = manager.get("alignment_losses", name)
    if descriptor.scores == "rollouts":  # online RL (GRPO family): its own battery
        from swift_core.testing.rollout_loss_contract import check_rollout_loss

        return check_rollout_loss(descriptor, config=config, seed=seed)
    origin = f" ({descriptor.distribution})" if descriptor.distribution else ""
    check = Checker(f"alignment loss {descriptor.name!r}{origin}")
    config = config if config is not None else loss_config(descriptor)
    _LossBattery(check, descriptor, config, loss_inputs(descriptor, batch, seed)).run()
    return check.report


class _LossBattery:
    def __init__(self, check: Checker, descriptor: Any, config: Any, inputs: Any) -> None:
        self.check, self.descriptor, self.config, self.inputs = check, descriptor, config, inputs
        self.reward = descriptor.scores == "reward"

    def run(self) -> None:
        from swift_core.align.base import AlignmentLoss

        check = self.check
        with check.clause("the factory makes an AlignmentLoss"):
            self.loss = self.descriptor.load()()
            check.require(
                isinstance(self.loss, AlignmentLoss),
                f"got {type(self.loss).__name__}, not a swift_core.align.AlignmentLoss",
            )
        self.finite_with_gradient()
        self.prefers_chosen()
        self.uses_reference()
        self.names_missing_fields()

    def value(self, inputs: Any) -> float:
        import torch

        with torch.no_grad():
            return float(self.loss(inputs, self.config).loss)

    def policy(self, inputs: Any) -> list[tuple[str, Any]]:
        names = ("chosen", "rejected") if self.reward else ("chosen_logps", "rejected_logps")
        return [(n, getattr(inputs, n)) for n in names if getattr(inputs, n, None) is not None]

    def finite_with_gradient(self) -> None:
        import torch

        from swift_core.align.base import LossOutput

        check = self.check
        with check.clause("a finite scalar loss with a gradient on the policy's inputs"):
            out = self.loss(self.inputs, self.config)
            check.require(isinstance(out, LossOutput), f"returned {type(out).__name__}, not a LossOutput")
            loss = out.loss
            check.require(
                isinstance(loss, torch.Tensor) and loss.ndim == 0,
                f"the loss must be a scalar tensor, got {getattr(loss, 'shape', type(loss).__name__)}",
            )
            check.require(torch.isfinite(loss).item(), f"the loss is {loss.item()}")
            check.require(loss.requires_grad, "the loss has no gradient (is it detached?)")
            loss.backward()
            grads = {n: t.grad for n, t in self.policy(self.inputs)}
            check.require(
                grads["chosen" if self.reward else "chosen_logps"] is not None,
                "no gradient reaches the chosen answers",
            )
            for n, grad in grads.items():
                if grad is not None:
                    check.require(torch.isfinite(grad).all().item(), f"the gradient on {n} is not finite")
            check.require(
                any(grad is not None and grad.abs().sum().item() > 0 for grad in grads.values()),
                "the gradient on the policy's inputs is zero",
            )
        with check.clause("LossOutput carries reward tensors and plain-number metrics"):
            check.require(isinstance(out.chosen_rewards, torch.Tensor), "chosen_rewards is not a tensor")
            check.require(
                out.rejected_rewards is None or isinstance(out.rejected_rewards, torch.Tensor),
                "rejected_rewards is neither None nor a tensor",
            )
            for key, metric in out.metrics.items():
                try:
                    number = float(metric)
                except (TypeError, ValueError):
                    check.fail(f"metric {key!r} is not a number: {metric!r}")
                check.require(math.isfinite(number), f"metric {key!r} is {number}")

    def shifted(self, chosen: float = 1.0, rejected: float = 1.0, mask: Any = None) -> Any:
        """The inputs with the chosen (rejected) policy scores moved: log-probs scaled by the
        factor (below 1 is likelier: nearer 0), reward scores shifted by -log(factor)."""
        import torch

        inputs = self.inputs
        if self.reward:
            return dataclasses.replace(
                inputs,
                chosen=(inputs.chosen - math.log(chosen)).detach(),
                rejected=(inputs.rejected - math.log(rejected)).detach(),
            )
        factor = torch.ones_like(inputs.chosen_logps) * chosen
        if mask is not None:  # unpaired: which examples get the chosen factor, the others get rejected
            factor = torch.where(mask, torch.tensor(chosen), torch.tensor(rejected))
        new_rejected = None
        if inputs.rejected_logps is not None:
            new_rejected = inputs.rejected_logps * rejected
        return with_policy(inputs, chosen=inputs.chosen_logps * factor, rejected=new_rejected)

    def prefers_chosen(self) -> None:
        check = self.check
        with check.clause("the loss falls as the chosen answers get likelier and the rejected ones less"):
            base = self.value(self.inputs)
            mask = None
            if not self.descriptor.paired and not self.reward:
                mask = self.inputs.labels.bool()
            up = self.value(self.shifted(chosen=STEP_UP, mask=mask))
            down = self.value(self.shifted(rejected=STEP_DOWN, mask=mask))
            what = "desirable" if mask is not None else "chosen"
            other = "undesirable" if mask is not None else "rejected"
            check.require(up < base, f"raising the {what} answers' scores moved the loss from {base} to {up}")
            check.require(
                down < base, f"lowering the {other} answers' scores moved the loss from {base} to {down}"
            )

    def uses_reference(self) -> None:
        check = self.check
        if not self.descriptor.needs_reference:
            check.skip("the loss uses the reference it needs", "needs_reference=False")
            return
        with check.clause("the loss uses the reference it needs"):
            inputs = self.inputs
            # Only the chosen side: moving both references alike cancels in a margin of log-ratios.
            moved = self.value(dataclasses.replace(inputs, ref_chosen_logps=inputs.ref_chosen_logps + 1.0))
            check.require(
                moved != self.value(inputs),
                "needs_reference=True, but the loss ignores the reference log-probs (the trainer would "
                "build a reference model for nothing)",
            )

    def names_missing_fields(self) -> None:
        import torch

        check = self.check
        inputs = self.inputs
        optional = [
            f.name
            for f in dataclasses.fields(inputs)
            if f.default is None and getattr(inputs, f.name) is not None
        ]
        if not optional:
            check.skip(
                "a missing input is named in the error", f"every input of {type(inputs).__name__} is required"
            )
            return
        with check.clause("a missing input is named in the error"):
            for field_name in optional:
                try:
                    out = self.loss(dataclasses.replace(inputs, **{field_name: None}), self.config)
                except Exception as exc:
                    check.require(
                        field_name in str(exc),
                        f"without {field_name} it raised {type(exc).__name__}: {exc} (name the field)",
                    )
                    continue
                check.require(
                    isinstance(getattr(out, "loss", None), torch.Tensor) and torch.isfinite(out.loss).item(),
                    f"without {field_name} it returned a loss of {getattr(out, 'loss', out)!r}",
                )
