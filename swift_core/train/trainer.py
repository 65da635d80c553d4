"""transformers.Trainer with what Swift adds: tuner parameter groups and complete-checkpoint markers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import Trainer

from swift_core.atomic import write_json_atomic
from swift_core.models.checkpoint import ARGS_FILE
from swift_core.train.outputs import mark_complete


class SwiftTrainer(Trainer):
    def __init__(
        self,
        *args: Any,
        swift_args: dict[str, Any],
        param_groups: list[dict[str, Any]] | None = None,
        tuner: Any = None,
        batch_sampler: Any = None,
        chunked_loss: bool = False,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.swift_args = swift_args
        self.param_groups = param_groups
        self.tuner = tuner
        self.batch_sampler = batch_sampler
        # None until the first training batch has compared it with the model's own loss.
        self.chunked_loss: bool | None = None if chunked_loss else False

    def get_train_dataloader(self) -> Any:
        """The Trainer's loader, or one over `batch_sampler` (token-budget batches): accelerate
        shards it across ranks and skips its first batches on resume as it does the Trainer's."""
        if self.batch_sampler is None:
            return super().get_train_dataloader()
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self.batch_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        return self.accelerator.prepare(loader)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """The causal-LM loss without full logits (`swift_core.train.chunked_loss`) while training;
        the model's own loss for evaluation, for heads that are not a plain linear layer, and when
        the first batch shows the two disagree."""
        if return_outputs or not model.training or "labels" not in inputs or self.chunked_loss is False:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        from swift_core.train.chunked_loss import output_head

        head = output_head(self.accelerator.unwrap_model(model))
        if head is None:
            self.chunked_loss = False
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.chunked_loss is None:
            self.chunked_loss = self._chunked_loss_agrees(model, head, inputs)
            if not self.chunked_loss:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = self._chunked_loss(model, head, inputs, num_items_in_batch)
        if loss is None:  # the model changed the sequence (virtual tokens): its own loss
            self.chunked_loss = False
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        return loss

    def _chunked_loss(self, model: Any, head: Any, inputs: dict[str, Any], num_items_in_batch: Any) -> Any:
        from swift_core.train.chunked_loss import causal_lm_loss

        labels = inputs["labels"]
        rest = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**rest, output_hidden_states=True, logits_to_keep=1)
        hidden = outputs.hidden_states[-1] if outputs.hidden_states else None
        if hidden is None or hidden.shape[:2] != labels.shape:
            return None
        return causal_lm_loss(hidden, head, labels, num_items_in_batch)

    def _chunked_loss_agrees(self, model: Any, head: Any, inputs: dict[str, Any]) -> bool:
        """Both losses on one row of the first batch, dropout off: equal within 1e-4, or not used."""
        import torch

        sample = {
            k: (v[:1, :256] if torch.is_tensor(v) and v.dim() == 2 else v)
            for k, v in inputs.items()
            if k in ("input_ids", "attention_mask", "labels", "position_ids")
        }
        model.eval()
        try:
            with torch.no_grad():
                own = model(**sample).loss
                ours = self._chunked_loss(model, head, sample, None)
        except (TypeError, ValueError, RuntimeError):  # no hidden states or logits_to_keep
            return False
        finally:
            model.train()
        # They differ for a head that is not a plain linear layer (soft-capping, a logit scale).
        return (
            own is not None
            and ours is not None
            and bool(torch.isfinite(own))
            and abs(float(own) - float(ours)) <= 1e-4 * max(1.0, abs(float(own)))
        )

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Trainer's save, then the tuner's `after_save` (PiSSA/OLoRA rewrite their adapter)."""
        super()._save(output_dir, state_dict)
        if self.tuner is not None:
            self.tuner.after_save(self.model, output_dir if output_dir is not None else self.args.output_dir)

    def create_optimizer(self, *args: Any, **kwargs: Any):
        """Use the tuner's parameter groups (LoRA+ gives B its own learning rate) when it has them."""
        if self.optimizer is None and self.param_groups:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, self.model)
            self.optimizer = optimizer_cls(self.param_groups, **optimizer_kwargs)
            return self.optimizer
        return super().create_optimizer(*args, **kwargs)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        """Trainer's loading, with one fix for distributed runs on the CPU.

        transformers maps the optimizer state of a multi-process run to `args.device`, which on
        the CPU is `cpu:<local rank>`, a location `torch.load` cannot restore to ("don't know how
        to restore data location ... cpu:0"): resuming DDP on the CPU failed. CPU memory is one
        place, so such a location is plain "cpu".
        """
        if checkpoint is None or self.args.world_size <= 1 or self.args.device.type != "cpu":
            return super()._load_optimizer_and_scheduler(checkpoint)
        import torch

        load = torch.load

        def load_to_cpu(*args: Any, map_location: Any = None, **kwargs: Any) -> Any:
            if isinstance(map_location, (str, torch.device)) and str(map_location).startswith("cpu"):
                map_location = "cpu"
            return load(*args, map_location=map_location, **kwargs)

        torch.load = load_to_cpu
        try:
            return super()._load_optimizer_and_scheduler(checkpoint)
        finally:
            torch.load = load

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        # Every rank writes its part (ZeRO and FSDP shards) before the main one calls it complete.
        self.accelerator.wait_for_everyone()
        if not self.args.should_save:
            return
        checkpoint = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        if not checkpoint.is_dir():
            return
        write_json_atomic(checkpoint / ARGS_FILE, self.swift_args)
        if hasattr(os, "sync"):
            os.sync()
        mark_complete(checkpoint, {"step": self.state.global_step})
