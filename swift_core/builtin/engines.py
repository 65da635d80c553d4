"""Built-in inference engines. Factories are strings: torch and transformers load only when used."""

from __future__ import annotations

from swift_core.descriptors import EngineDescriptor
from swift_core.engines.server.options import ServerEngineOptions
from swift_core.hookspecs import hookimpl
from swift_core.multimodal.options import ImageOptions


@hookimpl
def register_engines(register):
    register(
        EngineDescriptor(
            name="transformers",
            aliases=("pt", "hf"),
            description="transformers + peft: dynamic batching, streaming, several LoRA adapters per request",
            factory="swift_core.engines.transformers.engine:TransformersEngine",
            requires=("torch", "transformers", "peft"),
            options=ImageOptions,
        )
    )
    register(
        EngineDescriptor(
            name="server",
            description="a running swift deploy --enable_weight_updates server over HTTP: GRPO's server mode "
            "(--rollout_engine server --rollout_server_url URL)",
            factory="swift_core.engines.server.client:ServerEngine",
            options=ServerEngineOptions,
            rollout_options=True,
            rollout_only=True,
        )
    )
