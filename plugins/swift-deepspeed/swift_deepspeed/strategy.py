"""DeepSpeed ZeRO through transformers' Trainer (which hands the engine to accelerate).

The named presets are DeepSpeed configs whose batch, accumulation, clipping and precision fields
are "auto": the Trainer fills them from Swift's own flags, so `--per_device_train_batch_size` or
`--max_grad_norm` mean the same with and without DeepSpeed. ZeRO-3 gathers the 16-bit weights on
save (`stage3_gather_16bit_weights_on_model_save`), without which a LoRA adapter saved under ZeRO-3
is empty (DeepSpeed#7900, peft#2892). A config file is used as given, after the checks below.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError
from swift_core.strategies.base import Strategy, StrategyContext
from swift_deepspeed.build_locks import clear_stale_locks

# DeepSpeed 0.19 calls torch.distributed functions torch 2.13 deprecates: not the user's business.
warnings.filterwarnings(
    "ignore", message=r"`torch\.distributed\.\w+` is deprecated", category=FutureWarning, module="torch"
)

PRESETS: dict[str, tuple[int, bool]] = {  # name -> (ZeRO stage, CPU offload)
    "zero0": (0, False),
    "zero1": (1, False),
    "zero2": (2, False),
    "zero3": (3, False),
    "zero2_offload": (2, True),
    "zero3_offload": (3, True),
}


def preset_config(stage: int, offload: bool) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": stage}
    if stage >= 2:
        zero.update(overlap_comm=False, contiguous_gradients=True, reduce_bucket_size="auto")
    if stage == 3:
        zero.update(
            stage3_gather_16bit_weights_on_model_save=True,
            stage3_prefetch_bucket_size="auto",
            stage3_param_persistence_threshold="auto",
        )
    if offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
        if stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": False}
    return {
        "zero_optimization": zero,
        "train_micro_batch_size_per_gpu": "auto",
        "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "zero_allow_untested_optimizer": True,
    }


def read_config(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        names = ", ".join(PRESETS)
        raise SwiftError(f"--deepspeed {path}: neither a preset ({names}) nor a config file")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SwiftError(f"--deepspeed {path}: not a readable JSON config: {exc}") from None
    if not isinstance(data, dict):
        raise SwiftError(f"--deepspeed {path}: expected a JSON object")
    return data


class DeepSpeedStrategy(Strategy):
    name = "deepspeed"

    def config(self, ctx: StrategyContext) -> dict[str, Any]:
        value = str(getattr(ctx.options, "deepspeed", None) or "zero2")
        if value in PRESETS:
            return preset_config(*PRESETS[value])
        return read_config(value)

    def stage(self, ctx: StrategyContext) -> int:
        return int(self.config(ctx).get("zero_optimization", {}).get("stage", 0))

    def check(self, args: Any, ctx: StrategyContext) -> None:
        config = self.config(ctx)
        stage = self.stage(ctx)
        if ctx.quantized and stage == 3:
            raise SwiftError(
                "--deepspeed zero3 with a quantized base (QLoRA): ZeRO-3 cannot partition 4-bit weights here; "
                "use --deepspeed zero2"
            )
        zero = config.get("zero_optimization", {})
        if (
            stage == 3
            and ctx.saves_adapter
            and not zero.get(
                "stage3_gather_16bit_weights_on_model_save",
                zero.get("gather_16bit_weights_on_model_save", False),
            )
        ):
            raise SwiftError(
                "--deepspeed config with ZeRO-3 and an adapter: set zero_optimization."
                "stage3_gather_16bit_weights_on_model_save to true, or the saved adapter is empty"
            )

    def trainer_arguments(self, args: Any, ctx: StrategyContext) -> dict[str, Any]:
        # The Trainer's arguments start DeepSpeed, which builds or loads its ops under torch's
        # build locks: one left by a killed build would hang this run before step 1.
        clear_stale_locks()
        return {"deepspeed": self.config(ctx), "ddp_backend": ctx.runtime.dist_backend}

    def describe(self, ctx: StrategyContext) -> str:
        value = str(getattr(ctx.options, "deepspeed", None) or "zero2")
        return f"deepspeed {value} (ZeRO-{self.stage(ctx)}) over {ctx.world_size} processes"
