"""The strategy interface: what a distributed strategy tells the training pipeline.

Strategies drive engines that already exist (torch DDP, FSDP2 through accelerate, DeepSpeed
ZeRO): a strategy says which `transformers.TrainingArguments` fields select and configure its
engine, and refuses, while arguments are checked, what it cannot do. The Trainer and accelerate
then build the process groups, shard the state and sync the gradients; no strategy calls
`init_process_group` itself. A strategy is a plugin (`register_strategies`) so that DeepSpeed
or Megatron install, or are denied by policy, on their own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy may look at when it is checked and configured."""

    world_size: int
    runtime: Any  # swift_core.runtimes.base.HardwareRuntime
    dtype_name: str
    saves_adapter: bool  # the tuner trains an adapter (LoRA, ...) rather than the weights
    quantized: bool  # a load-time quantizer (QLoRA)
    options: Any = None  # the strategy's options dataclass filled from the flags


class Strategy(ABC):
    name: str = ""
    # A strategy that brings its own training loop (Megatron, through Megatron-Bridge) instead of
    # configuring transformers' Trainer: the sft/pt pipeline hands it the run (`train`).
    trains_itself: bool = False

    def check_launch(self, args: Any, options: Any, world_size: int) -> None:  # noqa: B027 - optional
        """Raise SwiftError before torchrun starts any process (no torch import, no runtime yet)."""

    def train(self, args: Any, mode: str, ctx: StrategyContext, manager: Any) -> Any:
        """The whole training run, for a strategy that `trains_itself`; returns a TrainResult."""
        raise NotImplementedError(f"strategy {self.name} configures the Trainer; it does not train itself")

    def check(self, args: Any, ctx: StrategyContext) -> None:  # noqa: B027 - optional
        """Raise SwiftError for what this strategy cannot do with these arguments (before any load)."""

    @abstractmethod
    def trainer_arguments(self, args: Any, ctx: StrategyContext) -> dict[str, Any]:
        """`transformers.TrainingArguments` fields that select and configure this strategy's engine."""

    def describe(self, ctx: StrategyContext) -> str:
        """One line for the run's start-up message."""
        return f"{self.name} over {ctx.world_size} processes"
