"""Options of the llm-compressor quantizers (flags of `swift export` / `swift quantize` while
swift-llmcompressor is installed).

Light on purpose: the plugin module imports this at every start-up to describe the quantizers.

A field declared by several quantizers (`--quant_ignore`, `--quant_scheme`, `--quant_group_size`,
`--gptq_dampening_frac`) is one flag: the core merges declarations that agree on type and default,
so each is declared once, in a base class, and inherited. Names avoid the export command's own
flags (`--quant_bits`, `--quant_n_samples`, `--quant_seqlen`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config import arg

# Modules kept in full precision unless --quant_ignore says otherwise.
DEFAULT_IGNORE = ["lm_head"]
DEFAULT_GROUP_SIZE = 128


@dataclass(kw_only=True)
class CommonOptions:
    quant_ignore: list[str] = arg(
        DEFAULT_IGNORE,
        help="llm-compressor: modules kept in full precision, by name or 're:REGEX' "
        "(default: lm_head; give the flag with no value to quantize every linear layer)",
    )
    quant_scheme: str | None = arg(
        None,
        help="llm-compressor: a compressed-tensors preset instead of the method's default "
        "(awq: W4A16_ASYM, W4A16; gptq: W4A16, W4A16_ASYM, W8A16; w8a8: W8A8; fp8: FP8_DYNAMIC, FP8_BLOCK)",
    )


@dataclass(kw_only=True)
class GroupedOptions(CommonOptions):
    quant_group_size: int = arg(
        DEFAULT_GROUP_SIZE,
        help="awq/gptq: weights per quantization group (must divide every quantized layer's "
        "input size); -1 for one scale per output channel",
    )


@dataclass(kw_only=True)
class GptqMixin:
    gptq_dampening_frac: float = arg(
        0.01, help="gptq/w8a8: dampening added to the Hessian's diagonal, as a fraction of its mean"
    )


@dataclass(kw_only=True)
class AwqOptions(GroupedOptions):
    awq_duo_scaling: bool = arg(
        True, help="awq: search scales from activations and weights (false: activations only)"
    )
    awq_n_grid: int = arg(20, help="awq: grid points of each layer's scale search (fewer: faster)")


@dataclass(kw_only=True)
class GptqOptions(GptqMixin, GroupedOptions):
    pass


@dataclass(kw_only=True)
class W8A8Options(GptqMixin, CommonOptions):
    w8a8_smoothing_strength: float = arg(
        0.8,
        help="w8a8: SmoothQuant's migration strength in [0, 1] (how much activation range moves "
        "into the weights before int8 quantization)",
    )


@dataclass(kw_only=True)
class Fp8Options(CommonOptions):
    pass
