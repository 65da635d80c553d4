"""Tuners: how a model is made trainable (LoRA and the PEFT family, full, freeze)."""

from swift_core.tuners.base import Tuner

__all__ = ["Tuner"]
