"""The tuner interface the training pipeline talks to.

A tuner is registered by a plugin (`register_tuners`) with a factory returning a `Tuner`. The
pipeline never branches on a tuner's name: it asks the tuner to check the arguments, to make a
loaded model trainable, for extra optimizer parameter groups and callbacks, and later to reload
and merge what it saved.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Tuner(ABC):
    name: str = ""
    # True: checkpoints hold an adapter (PEFT format) next to a base model; False: full weights.
    saves_adapter: bool = True
    # Whether a load-time quantized base (QLoRA) can be trained with this tuner.
    supports_quantized_base: bool = True

    def check(self, args: Any) -> None:  # noqa: B027 - optional; most tuners accept any arguments
        """Refuse bad argument combinations before any model is loaded (raise SwiftError)."""

    @abstractmethod
    def apply(self, model: Any, args: Any, family: Any) -> Any:
        """Return the model ready to train (e.g. wrapped as a PeftModel, or parameters frozen)."""

    def optimizer_param_groups(self, model: Any, args: Any) -> list[dict[str, Any]] | None:
        """Parameter groups with their own learning rates (LoRA+), or None for the default."""
        return None

    def callbacks(self, model: Any, args: Any) -> list[Any]:
        """transformers TrainerCallbacks the tuner needs during training (AdaLoRA's budget)."""
        return []

    def save(self, model: Any, folder: str, **kwargs: Any) -> None:
        """Write what this tuner's checkpoints hold (an adapter, or full weights) into `folder`.

        `kwargs` are what transformers' Trainer passes to `save_pretrained` (`state_dict`, ...).
        The training pipeline saves every checkpoint through here, so a tuner that must rewrite
        what peft writes (PiSSA/OLoRA) overrides `after_save` instead of patching the model.
        """
        model.save_pretrained(folder, **kwargs)
        self.after_save(model, folder)

    def after_save(self, model: Any, folder: str) -> None:  # noqa: B027 - optional
        """Called after the model's own files are written into `folder` (by `save` or the trainer)."""

    def load(self, base_model: Any, path: str) -> Any:
        """Put a saved adapter back on a base model."""
        from peft import PeftModel

        return PeftModel.from_pretrained(base_model, path)

    def merge(self, model: Any) -> Any:
        """Fold the adapter into the base weights and return a plain transformers model."""
        return model.merge_and_unload()
