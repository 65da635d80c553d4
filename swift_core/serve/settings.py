"""What the HTTP app needs to know from the deploy arguments, apart from the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swift_core.engines.protocol import InferenceEngine
from swift_core.errors import SwiftError
from swift_core.serve.limits import RequestLimits


@dataclass
class ServeSettings:
    """What the app reads from the deploy arguments (any object with these attributes will do).

    A dataclass of its own so that tests and engine plugins can build an app without the whole
    `DeployArguments`, and so that the routes depend on a few values rather than on the CLI.
    """

    served_model_name: str
    api_key: str | None = None
    default_max_tokens: int | None = None
    # Other names of the base model (swift_core.engines.served_names), listed in /v1/models.
    aliases: tuple[str, ...] = ()
    limits: RequestLimits = field(default_factory=RequestLimits)
    # /v1/rollouts and /v1/weights (swift_core.serve.rollouts): a client may replace the weights.
    enable_weight_updates: bool = False

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key.strip():
            raise SwiftError(
                "the API key is empty, which would leave the server open; pass a key with --api_key "
                "(or SWIFT_API_KEY), or leave both unset to serve without one"
            )

    @property
    def model_names(self) -> list[str]:
        """Every name the base model answers to, its own first."""
        return [self.served_model_name, *(a for a in self.aliases if a != self.served_model_name)]

    @classmethod
    def from_config(cls, engine: InferenceEngine, config: Any) -> ServeSettings:
        """Read the deploy arguments (or None); a missing name falls back to the engine's model
        and its aliases (an explicit --served_model_name has none)."""
        if isinstance(config, ServeSettings):
            return config
        name = getattr(config, "served_model_name", None)
        return cls(
            served_model_name=name or engine.model_name or "model",
            api_key=getattr(config, "api_key", None),
            default_max_tokens=getattr(config, "max_new_tokens", None),
            aliases=() if name else tuple(getattr(engine, "model_aliases", ()) or ()),
            limits=RequestLimits.from_config(config),
            enable_weight_updates=bool(getattr(config, "enable_weight_updates", False)),
        )
