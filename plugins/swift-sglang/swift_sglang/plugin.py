"""Hooks of swift-sglang. Light on purpose: nothing of sglang, torch or transformers is imported
here; the engine module is imported only when the engine is selected, so `swift --help` and
`swift plugins list` work where SGLang (a GPU library) is not installed."""

from __future__ import annotations

from swift_core import hookimpl
from swift_core.descriptors import EngineDescriptor


@hookimpl
def register_engines(register):
    register(
        EngineDescriptor(
            name="sglang",
            description="SGLang: RadixAttention, LoRA per request, streaming, logprobs and prompt logprobs "
            "(GPU: pip install 'swift-sglang[gpu]')",
            factory="swift_sglang.engine:SglangEngine",
            requires=("sglang",),
        )
    )
