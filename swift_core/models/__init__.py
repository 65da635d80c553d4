"""Models: which family a `--model` argument belongs to (`resolve_model`)."""

from swift_core.models.resolve import ResolvedModel, resolve_model

__all__ = ["ResolvedModel", "resolve_model"]
