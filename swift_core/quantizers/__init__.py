"""Quantizers: load-time (QLoRA bases) and export-time (GPTQ, AWQ, FP8)."""

from swift_core.quantizers.base import Quantizer

__all__ = ["Quantizer"]
