"""FSDP2 (`torch.distributed.fsdp.fully_shard`) through accelerate, as transformers' Trainer drives it.

On accelerators accelerate builds the engine itself; on the CPU (gloo) accelerate leaves it off
and `swift_core.strategies.fsdp_cpu` switches the same engine on before training.

`--fsdp` takes transformers' words: `full_shard` (parameters, gradients and optimizer state
sharded: ZeRO-3-like), `shard_grad_op` (gradients and optimizer state: ZeRO-2-like), `offload`
(parameters and optimizer state in CPU memory), `auto_wrap` (one FSDP unit per decoder layer, the
default with FSDP2). Checkpoints are written as full state dicts by default, so an adapter
checkpoint is a plain peft folder; `--fsdp_state_dict_type sharded` keeps per-rank shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swift_core.config.arguments import arg
from swift_core.errors import SwiftError
from swift_core.strategies.base import Strategy, StrategyContext

WORDS = ("full_shard", "shard_grad_op", "hybrid_shard", "no_shard", "offload", "auto_wrap")
SHARDING = ("full_shard", "shard_grad_op", "hybrid_shard", "no_shard")


@dataclass(kw_only=True)
class FSDPOptions:
    fsdp: list[str] = arg(
        [],
        help="Shard with FSDP2: full_shard | shard_grad_op | hybrid_shard | no_shard, plus offload, auto_wrap",
    )
    fsdp_state_dict_type: str = arg(
        "full", help="Checkpoints as one full state dict (full: loads anywhere) or per-rank shards (sharded)"
    )


def _words(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [w for item in items for w in str(item).replace(",", " ").split() if w]


class FSDPStrategy(Strategy):
    name = "fsdp"

    def _parse(self, ctx: StrategyContext) -> tuple[list[str], str]:
        options = ctx.options or FSDPOptions()
        words = _words(options.fsdp) or ["full_shard"]
        unknown = [w for w in words if w not in WORDS]
        if unknown:
            raise SwiftError(f"--fsdp {' '.join(unknown)}: unknown; use {', '.join(WORDS)}")
        if sum(w in SHARDING for w in words) > 1:
            raise SwiftError(f"--fsdp {' '.join(words)}: give one of {', '.join(SHARDING)}")
        if not any(w in SHARDING for w in words):
            words.insert(0, "full_shard")
        if options.fsdp_state_dict_type not in ("full", "sharded"):
            raise SwiftError(f"--fsdp_state_dict_type {options.fsdp_state_dict_type}: use full or sharded")
        return words, options.fsdp_state_dict_type

    def check(self, args: Any, ctx: StrategyContext) -> None:
        words, state_dict_type = self._parse(ctx)
        if state_dict_type == "sharded" and ctx.saves_adapter:
            # transformers' save_model writes the model only for full state dicts: a sharded
            # checkpoint of a LoRA run would hold per-rank shards and no peft folder.
            raise SwiftError(
                "--fsdp_state_dict_type sharded with an adapter tuner: the checkpoint would hold only "
                "per-rank shards, no adapter folder; adapters are small: use full (the default)"
            )
        if "offload" in words and getattr(ctx.runtime, "device_type", None) == "cpu":
            raise SwiftError(
                "--fsdp offload: on the CPU runtime parameters and optimizer state are in CPU memory "
                "already; drop offload"
            )
        if ctx.quantized:
            raise SwiftError(
                "--fsdp with a quantized base (QLoRA): not supported here; use --deepspeed zero2 or DDP"
            )

    def trainer_arguments(self, args: Any, ctx: StrategyContext) -> dict[str, Any]:
        words, state_dict_type = self._parse(ctx)
        if "auto_wrap" not in words:
            words.append("auto_wrap")  # FSDP2 shards per decoder layer; without it, one unit: no saving
        return {
            "fsdp": " ".join(words),
            "fsdp_config": {
                "fsdp_version": 2,
                "state_dict_type": "FULL_STATE_DICT" if state_dict_type == "full" else "SHARDED_STATE_DICT",
                "activation_checkpointing": bool(getattr(args, "gradient_checkpointing", False)),
            },
            "ddp_backend": ctx.runtime.dist_backend,
        }

    def describe(self, ctx: StrategyContext) -> str:
        return f"fsdp2 ({' '.join(self._parse(ctx)[0])}) over {ctx.world_size} processes"
