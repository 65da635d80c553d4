"""What the HTTP app needs to know from the deploy arguments, apart from the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swift_core.engines.protocol import InferenceEngine


@dataclass
class ServeSettings:
    """What the app reads from the deploy arguments (any object with these attributes will do).

    A dataclass of its own so that tests and engine plugins can build an app without the whole
    `DeployArguments`, and so that the routes depend on three values rather than on the CLI.
    """

    served_model_name: str
    api_key: str | None = None
    default_max_tokens: int | None = None

    @classmethod
    def from_config(cls, engine: InferenceEngine, config: Any) -> ServeSettings:
        """Read the deploy arguments (or None); a missing name falls back to the engine's model."""
        return cls(
            served_model_name=getattr(config, "served_model_name", None) or engine.model_name or "model",
            api_key=getattr(config, "api_key", None) or None,
            default_max_tokens=getattr(config, "max_new_tokens", None),
        )
