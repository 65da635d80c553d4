"""Megatron (tensor and pipeline parallelism) as a Swift strategy, over Megatron-Bridge.

Unlike DDP, FSDP and DeepSpeed, Megatron is not an engine transformers' Trainer drives: the model
is rebuilt as a Megatron-Core model split over TP x PP GPUs, trained by Megatron-Bridge's own loop,
and exported back to a Hugging Face folder. So this strategy `trains_itself`: the sft/pt pipeline
hands it the run after the shared checks, and `swift_megatron.bridge` does the three steps through
Megatron-Bridge's public API. Everything it can refuse, it refuses before torchrun starts.
"""

from __future__ import annotations

from typing import Any

from swift_core.errors import SwiftError
from swift_core.strategies.base import Strategy, StrategyContext
from swift_megatron.environment import require_megatron


def parallel_sizes(options: Any) -> tuple[int, int]:
    """(TP, PP) from the options; 1 where not given, and a clear error for a size below 1."""
    sizes = []
    for flag in ("tensor_model_parallel_size", "pipeline_model_parallel_size"):
        value = getattr(options, flag, None)
        value = 1 if value is None else int(value)
        if value < 1:
            raise SwiftError(f"--{flag} {value}: must be 1 or more")
        sizes.append(value)
    return sizes[0], sizes[1]


def check_world(options: Any, world_size: int) -> tuple[int, int, int]:
    """(TP, PP, DP): TP x PP must divide the processes; what is left over is data parallelism."""
    tp, pp = parallel_sizes(options)
    if world_size % (tp * pp):
        raise SwiftError(
            f"--tensor_model_parallel_size {tp} x --pipeline_model_parallel_size {pp} = {tp * pp} does not "
            f"divide the {world_size} processes: use a world size that is a multiple of {tp * pp}"
        )
    return tp, pp, world_size // (tp * pp)


class MegatronStrategy(Strategy):
    name = "megatron"
    trains_itself = True

    def check_launch(self, args: Any, options: Any, world_size: int) -> None:
        check_world(options, world_size)
        self._check_args(args)
        require_megatron("--megatron")

    def check(self, args: Any, ctx: StrategyContext) -> None:
        self.check_launch(args, ctx.options, ctx.world_size)
        if ctx.quantized:
            raise SwiftError("--megatron with a quantized base (QLoRA): not supported; drop --quant_bits")

    @staticmethod
    def _check_args(args: Any) -> None:
        if getattr(args, "rlhf_type", None):
            raise SwiftError(
                f"--megatron with swift rlhf ({args.rlhf_type}): only sft and pt train under Megatron here"
            )
        if getattr(args, "resume_from_checkpoint", None):
            raise SwiftError(
                "--megatron with --resume_from_checkpoint: not supported yet (Megatron-Bridge resumes from its own "
                "checkpoints; Swift does not map them yet)"
            )
        tuner = getattr(args, "tuner_type", "lora")
        if tuner not in ("lora", "full"):
            raise SwiftError(
                f"--megatron with --tuner_type {tuner}: Megatron-Bridge trains lora or full here"
            )

    def trainer_arguments(self, args: Any, ctx: StrategyContext) -> dict[str, Any]:
        return {}  # never used: this strategy runs its own loop (train)

    def describe(self, ctx: StrategyContext) -> str:
        tp, pp, dp = check_world(ctx.options, ctx.world_size)
        return f"megatron (TP {tp} x PP {pp} x DP {dp}) over {ctx.world_size} processes"

    def train(self, args: Any, mode: str, ctx: StrategyContext, manager: Any) -> Any:
        from swift_megatron.run import run_megatron

        return run_megatron(args, mode, ctx, manager)
