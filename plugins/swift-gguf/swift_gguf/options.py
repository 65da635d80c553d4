"""The gguf quantizer's own options (flags of the export command while swift-gguf is installed).

Light on purpose: the plugin module imports it at start-up to describe the quantizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config import arg


@dataclass(kw_only=True)
class GgufOptions:
    gguf_type: str = arg(
        "auto",
        help="gguf: tensor type of the 2-D weights: f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0; "
        "auto: from --quant_bits (16 f16, 8 q8_0, 5 q5_1, 4 q4_1), else q8_0",
    )
    gguf_file_name: str = arg("", help="gguf: name of the written file (default: model-<TYPE>.gguf)")
    gguf_tokenizer_pre: str = arg(
        "auto",
        help="gguf: llama.cpp pre-tokenizer name (tokenizer.ggml.pre); auto: recognised from "
        "tokenizer.json (gpt-2, llama-bpe, qwen2)",
    )
