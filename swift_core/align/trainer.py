"""The preference trainer: transformers.Trainer with a pluggable alignment loss.

One forward over chosen and rejected answers together; the reference log-probs come from
precomputed values, a separate reference model, the policy with its adapter disabled (LoRA: no
second copy in memory), or a frozen copy (full fine-tuning). The loss plugin's descriptor says
whether a reference is needed, whether data is paired and whether the loss reads log-probs or a
reward head's scores (`RewardModelTrainer`); the trainer never reads its name.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

from swift_core.align.base import LossConfig, PreferenceLogps, PreferenceScores
from swift_core.train.trainer import SwiftTrainer


def sequence_logps(logits: Any, labels: Any) -> tuple[Any, Any]:
    """Sum of the log-probabilities of the labelled tokens, and their count, per row."""
    import torch

    labels = labels[:, 1:]
    logits = logits[:, :-1, :]
    mask = labels != -100
    token_logps = (
        torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    )
    return (token_logps * mask).sum(-1), mask.sum(-1)


class ReferenceLogps:
    """Where the reference log-probs come from, decided once from the loss and the tuner."""

    def __init__(self, model: Any, ref_model: Any | None, frozen_copy: Any | None):
        self.model = model
        self.ref_model = ref_model
        self.frozen_copy = frozen_copy

    @property
    def kind(self) -> str:
        if self.ref_model is not None:
            return "reference model"
        if self.frozen_copy is not None:
            return "frozen copy"
        return "adapter disabled"

    def __call__(self, batch: dict[str, Any]) -> tuple[Any, Any]:
        import torch

        with torch.no_grad():
            if self.ref_model is not None or self.frozen_copy is not None:
                model = self.ref_model if self.ref_model is not None else self.frozen_copy
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            else:
                ctx = (
                    self.model.disable_adapter()
                    if hasattr(self.model, "disable_adapter")
                    else contextlib.nullcontext()
                )
                with ctx:
                    logits = self.model(
                        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                    ).logits
        return sequence_logps(logits, batch["labels"])


class PreferenceTrainer(SwiftTrainer):
    def __init__(
        self,
        *args: Any,
        loss_fn: Any,
        loss_config: LossConfig,
        paired: bool,
        reference: ReferenceLogps | None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.loss_config = loss_config
        self.paired = paired
        self.reference = reference
        self._metrics: dict[str, list[float]] = defaultdict(list)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ):
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        logps, lengths = sequence_logps(out.logits, inputs["labels"])
        half = logps.shape[0] // 2
        ref = None
        if self.reference is not None:
            if "ref_chosen_logps" in inputs:
                ref = (inputs["ref_chosen_logps"], inputs["ref_rejected_logps"])
            else:
                ref_logps, _ = self.reference(inputs)
                ref = (ref_logps[:half], ref_logps[half:])
        nll = -logps[:half] / lengths[:half].clamp(min=1)
        if self.paired:
            batch = PreferenceLogps(
                chosen_logps=logps[:half],
                rejected_logps=logps[half:],
                ref_chosen_logps=ref[0] if ref else None,
                ref_rejected_logps=ref[1] if ref else None,
                chosen_lengths=lengths[:half],
                rejected_lengths=lengths[half:],
                chosen_nll=nll,
            )
        else:
            kl = None
            if ref is not None:
                kl = (logps[half:] - ref[1]).mean().clamp(min=0).detach()
            batch = PreferenceLogps(
                chosen_logps=logps[:half],
                ref_chosen_logps=ref[0] if ref else None,
                chosen_lengths=lengths[:half],
                chosen_nll=nll,
                labels=inputs["kto_labels"],
                kl=kl,
            )
        result = self.loss_fn(batch, self.loss_config)
        self._record(result, batch)
        return (result.loss, out) if return_outputs else result.loss

    def _record(self, result: Any, batch: PreferenceLogps) -> None:
        prefix = self._record_rewards(result)
        m = self._metrics
        m[f"{prefix}logps/chosen"].append(batch.chosen_logps.detach().mean().item())
        if batch.rejected_logps is not None:
            m[f"{prefix}logps/rejected"].append(batch.rejected_logps.detach().mean().item())

    def _record_rewards(self, result: Any) -> str:
        """rewards/* and the loss's own metrics; returns the prefix ("eval_" while evaluating)."""
        prefix = "eval_" if not self.model.training else ""
        chosen = result.chosen_rewards.detach().float()
        m = self._metrics
        if result.rejected_rewards is not None and self.paired:
            rejected = result.rejected_rewards.detach().float()
            m[f"{prefix}rewards/chosen"].append(chosen.mean().item())
            m[f"{prefix}rewards/rejected"].append(rejected.mean().item())
            m[f"{prefix}rewards/accuracies"].append((chosen > rejected).float().mean().item())
            m[f"{prefix}rewards/margins"].append((chosen - rejected).mean().item())
        elif result.rejected_rewards is not None:
            # Unpaired (KTO): desirable and undesirable examples are different rows of the batch.
            rejected = result.rejected_rewards.detach().float()
            if chosen.numel():
                m[f"{prefix}rewards/chosen"].append(chosen.mean().item())
            if rejected.numel():
                m[f"{prefix}rewards/rejected"].append(rejected.mean().item())
            if chosen.numel() and rejected.numel():
                m[f"{prefix}rewards/margins"].append((chosen.mean() - rejected.mean()).item())
        else:
            m[f"{prefix}rewards/chosen"].append(chosen.mean().item())
        for key, value in result.metrics.items():
            m[f"{prefix}{key}"].append(float(value))
        return prefix

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        prefix = "eval_" if any(k.startswith("eval_") for k in logs) else ""
        for key in [
            k for k in self._metrics if k.startswith(prefix) and (prefix or not k.startswith("eval_"))
        ]:
            values = self._metrics.pop(key)
            if values:
                logs[key] = sum(values) / len(values)
        super().log(logs, *args, **kwargs)


class RewardModelTrainer(PreferenceTrainer):
    """A reward model: one forward of a one-output sequence-classification head over chosen and
    rejected sequences together; the loss plugin (descriptor scores="reward") gets their scores.

    transformers' `*ForSequenceClassification` reads the score at the last token that is not the
    pad token, so batches are right-padded with `config.pad_token_id` (the pipeline sets it).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, paired=True, reference=None, **kwargs)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ):
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        rewards = out.logits.squeeze(-1)
        half = rewards.shape[0] // 2
        result = self.loss_fn(
            PreferenceScores(chosen=rewards[:half], rejected=rewards[half:]), self.loss_config
        )
        self._record_rewards(result)
        return (result.loss, out) if return_outputs else result.loss
