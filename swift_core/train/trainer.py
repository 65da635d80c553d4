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
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.swift_args = swift_args
        self.param_groups = param_groups
        self.tuner = tuner

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
