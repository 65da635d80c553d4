"""Quantizers: load-time (QLoRA bases) and export-time (GPTQ, AWQ, FP8, GGUF, bnb)."""

from swift_core.quantizers.base import ExportJob, ExportResult, Quantizer, library_versions

__all__ = ["ExportJob", "ExportResult", "Quantizer", "library_versions"]
