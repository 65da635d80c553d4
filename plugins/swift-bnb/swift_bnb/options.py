"""The bnb quantizer's own options (flags of `swift sft|pt|rlhf` while swift-bnb is installed).

Light on purpose: the plugin module imports it at start-up to describe the quantizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swift_core.config import arg


@dataclass(kw_only=True)
class BnbOptions:
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = arg("nf4", help="4-bit data type")
    bnb_4bit_use_double_quant: bool = arg(True, help="Quantize the quantization constants too")
