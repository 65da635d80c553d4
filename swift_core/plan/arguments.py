"""`swift plan`'s arguments: the run to size, in `swift sft`'s spellings where they exist."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from swift_core.config.arguments import arg
from swift_core.errors import SwiftError

_UNITS = {"": 1 << 30, "gib": 1 << 30, "gb": 10**9, "mib": 1 << 20, "mb": 10**6, "tib": 1 << 40, "tb": 10**12}


@dataclass(kw_only=True)
class PlanArguments:
    ARG_GROUP: ClassVar[str] = "plan"

    model: str = arg(help="A model folder (only its config.json is read) or a downloaded hub id")
    tuner: str = arg(
        "lora", help="lora (and its family: dora, ...) or full", aliases=("tuner_type", "train_type")
    )
    lora_rank: int = arg(8, help="LoRA rank r", aliases=("lora_r",))
    lora_dropout: float = arg(0.05, help="LoRA dropout (its copies of the inputs cost memory)")
    target_modules: list[str] = arg(["all-linear"], help="LoRA targets: all-linear or module names")
    quant_bits: int | None = arg(None, help="4 or 8: a quantized base (QLoRA)")
    max_length: int = arg(2048, help="Tokens per row")
    batch: int = arg(
        1, help="Rows per device per step", aliases=("per_device_train_batch_size", "batch_size")
    )
    gradient_checkpointing: bool = arg(False, help="Recompute activations in backward")
    chunked_loss: bool = arg(True, help="swift sft's loss without full logits (false: a full-logits loss)")
    torch_dtype: str = arg("bfloat16", help="float32, bfloat16, float16", aliases=("dtype",))
    devices: str = arg("1x24GiB", help="COUNTxMEMORY, e.g. 4x24GiB, 8x80GB, or one size (24GiB)")
    strategies: list[str] = arg(
        ["ddp", "zero2", "zero3", "fsdp_full_shard", "zero2_offload", "zero3_offload"],
        help="Strategies to size: ddp, zero1, zero2, zero3, zero2_offload, zero3_offload, fsdp_full_shard, "
        "fsdp_shard_grad_op",
    )
    json: bool = arg(False, help="Print the plan as JSON")


def parse_devices(text: str) -> tuple[int, float]:
    """(count, bytes per device) of `4x24GiB`, `2x80GB`, `24GiB`."""
    found = re.fullmatch(r"\s*(?:(\d+)\s*[x*]\s*)?(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = found.group(3).lower() if found else ""
    if not found or unit not in _UNITS:
        raise SwiftError(f"--devices {text!r}: give COUNTxMEMORY, e.g. 4x24GiB or 8x80GB")
    count = int(found.group(1) or 1)
    if count < 1:
        raise SwiftError(f"--devices {text!r}: at least one device")
    return count, float(found.group(2)) * _UNITS[unit]
