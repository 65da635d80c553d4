"""Built-in inference engines. Factories are strings: torch and transformers load only when used."""

from __future__ import annotations

from swift_core.descriptors import EngineDescriptor
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
