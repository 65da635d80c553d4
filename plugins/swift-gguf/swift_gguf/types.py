"""The GGUF tensor types this plugin writes, and how `--gguf_type` / `--quant_bits` choose one.

Light on purpose (no gguf, no numpy): `check` runs before any model loads. The names are the
members of `gguf.GGMLQuantizationType` and `gguf.LlamaFileType`, looked up only when writing.

What the gguf package can write: its `gguf.quants` module quantizes F32, F16, BF16, Q8_0, Q5_0,
Q5_1, Q4_0 and Q4_1 (and the ternary/FP4 types of a few special models) in numpy. The K-quants
(Q2_K .. Q6_K, and so llama.cpp's Q4_K_M / Q5_K_M mixes) and the i-quants can be read but not
written by it: they need llama.cpp's `llama-quantize`.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.errors import SwiftError


@dataclass(frozen=True)
class GgufType:
    name: str  # the --gguf_type spelling: "q8_0"
    ggml: str  # the gguf.GGMLQuantizationType member of 2-D weights: "Q8_0"
    file_type: str  # the gguf.LlamaFileType member written as general.file_type
    bits: int  # the --quant_bits it answers to
    block_size: int  # a row must be a multiple of this to be stored in the type
    description: str

    @property
    def scheme(self) -> str:
        return self.ggml

    @property
    def low_bit(self) -> bool:
        """Below 8 bits: the output projection is kept in Q8_0 (llama-quantize keeps it high too)."""
        return self.bits < 8


TYPES: dict[str, GgufType] = {
    t.name: t
    for t in (
        GgufType("f32", "F32", "ALL_F32", 32, 1, "32-bit floats, no loss"),
        GgufType("f16", "F16", "MOSTLY_F16", 16, 1, "16-bit floats"),
        GgufType("bf16", "BF16", "MOSTLY_BF16", 16, 1, "bfloat16 (the source's range, fewer mantissa bits)"),
        GgufType("q8_0", "Q8_0", "MOSTLY_Q8_0", 8, 32, "8-bit, one scale per 32 weights (8.5 bits/weight)"),
        GgufType(
            "q5_1", "Q5_1", "MOSTLY_Q5_1", 5, 32, "5-bit, scale and minimum per 32 weights (6 bits/weight)"
        ),
        GgufType("q5_0", "Q5_0", "MOSTLY_Q5_0", 5, 32, "5-bit, one scale per 32 weights (5.5 bits/weight)"),
        GgufType(
            "q4_1", "Q4_1", "MOSTLY_Q4_1", 4, 32, "4-bit, scale and minimum per 32 weights (5 bits/weight)"
        ),
        GgufType("q4_0", "Q4_0", "MOSTLY_Q4_0", 4, 32, "4-bit, one scale per 32 weights (4.5 bits/weight)"),
    )
}

# --quant_bits -> the type written when --gguf_type is auto: the most accurate type of that width
# that the gguf package can write (Q4_1 beats Q4_0 and Q5_1 beats Q5_0 on error, at +0.5 bit/weight).
BITS_DEFAULT: dict[int, str] = {16: "f16", 8: "q8_0", 5: "q5_1", 4: "q4_1"}
DEFAULT_TYPE = "q8_0"  # neither --gguf_type nor --quant_bits given
AUTO = "auto"

# Types llama.cpp has but the gguf package cannot write (it only dequantizes them).
_LLAMA_QUANTIZE_ONLY = (
    "q2_k",
    "q2_k_s",
    "q3_k",
    "q3_k_s",
    "q3_k_m",
    "q3_k_l",
    "q4_k",
    "q4_k_s",
    "q4_k_m",
    "q5_k",
    "q5_k_s",
    "q5_k_m",
    "q6_k",
    "iq1_s",
    "iq1_m",
    "iq2_xxs",
    "iq2_xs",
    "iq2_s",
    "iq2_m",
    "iq3_xxs",
    "iq3_xs",
    "iq3_s",
    "iq3_m",
    "iq4_nl",
    "iq4_xs",
)


def type_names() -> str:
    return ", ".join(TYPES)


def resolve_type(gguf_type: str | None, bits: int | None) -> GgufType:
    """The type `--gguf_type` and `--quant_bits` ask for; a SwiftError when they are bad or disagree."""
    name = (gguf_type or AUTO).strip().lower()
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int)):
        raise SwiftError(f"--quant_bits must be a whole number, got {bits!r}")
    if name == AUTO:
        if bits is None:
            return TYPES[DEFAULT_TYPE]
        if bits not in BITS_DEFAULT:
            allowed = ", ".join(f"{b} ({BITS_DEFAULT[b]})" for b in BITS_DEFAULT)
            raise SwiftError(f"--quant_method gguf takes --quant_bits {allowed}; got {bits}")
        return TYPES[BITS_DEFAULT[bits]]
    if name in _LLAMA_QUANTIZE_ONLY:
        raise SwiftError(
            f"--gguf_type {name}: the gguf package cannot write {name.upper()} (K- and i-quants are "
            f"llama.cpp's own quantizer); use one of {type_names()}, or export f16 and run "
            f"`llama-quantize model-F16.gguf model-{name.upper()}.gguf {name.upper()}`"
        )
    chosen = TYPES.get(name)
    if chosen is None:
        raise SwiftError(f"--gguf_type must be auto or one of {type_names()}; got {gguf_type!r}")
    if bits is not None and bits != chosen.bits:
        raise SwiftError(
            f"--quant_bits {bits} disagrees with --gguf_type {chosen.name} ({chosen.bits}-bit); "
            f"give one of them, or matching values"
        )
    return chosen
