"""Models: which family a `--model` argument belongs to (`resolve_model`), Swift checkpoint folders
(`checkpoint.Checkpoint`), model heads as data (`heads.HeadKind`) and the one loader every command
uses (`loader`: training, the transformers engine, reward scoring, export)."""

from swift_core.models.resolve import ResolvedModel, resolve_model

__all__ = ["ResolvedModel", "resolve_model"]
