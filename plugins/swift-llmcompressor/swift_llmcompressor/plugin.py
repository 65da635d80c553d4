"""Hooks of swift-llmcompressor. Light on purpose: torch, transformers and llm-compressor are
imported only when one of the quantizers exports."""

from swift_core import hookimpl
from swift_core.descriptors import QuantizerDescriptor
from swift_llmcompressor.options import AwqOptions, Fp8Options, GptqOptions, W8A8Options

REQUIRES = ("llmcompressor",)

QUANTIZERS = (
    (
        "awq",
        "AwqQuantizer",
        AwqOptions,
        "llm-compressor AWQ: 4-bit weights (W4A16, asymmetric), activation-aware scales; calibrates",
    ),
    (
        "gptq",
        "GptqQuantizer",
        GptqOptions,
        "llm-compressor GPTQ: 4-bit (W4A16) or 8-bit (W8A16) weights; calibrates",
    ),
    (
        "w8a8",
        "W8A8Quantizer",
        W8A8Options,
        "llm-compressor SmoothQuant+GPTQ: int8 weights and dynamic int8 activations; calibrates",
    ),
    (
        "fp8",
        "Fp8Quantizer",
        Fp8Options,
        "llm-compressor FP8-dynamic: fp8 weights per channel, fp8 activations per token; no calibration",
    ),
)


@hookimpl
def register_quantizers(register):
    for name, cls, options, description in QUANTIZERS:
        register(
            QuantizerDescriptor(
                name=name,
                description=description,
                factory=f"swift_llmcompressor.quantizer:{cls}",
                requires=REQUIRES,
                load_time=False,
                export_time=True,
                options=options,
            )
        )
