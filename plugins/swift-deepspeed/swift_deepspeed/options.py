"""The options of the DeepSpeed strategy (light: imported when the CLI builds its flags)."""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config.arguments import arg


@dataclass(kw_only=True)
class DeepSpeedOptions:
    deepspeed: str | None = arg(
        None,
        help="DeepSpeed ZeRO: zero1 | zero2 | zero3 | zero2_offload | zero3_offload (optimizer and, for "
        "zero3, parameters in CPU memory), or a DeepSpeed config FILE.json",
    )
