"""Hooks of swift-gguf. Light on purpose: gguf, numpy and torch are imported only when the
quantizer is selected."""

from swift_core import hookimpl
from swift_core.descriptors import QuantizerDescriptor
from swift_gguf.options import GgufOptions


@hookimpl
def register_quantizers(register):
    register(
        QuantizerDescriptor(
            name="gguf",
            description="GGUF file for llama.cpp and Ollama at export time: F16, BF16, Q8_0, Q5_x, Q4_x",
            factory="swift_gguf.quantizer:GgufQuantizer",
            requires=("gguf",),
            load_time=False,
            export_time=True,
            options=GgufOptions,
        )
    )
