"""DDP: every process holds the whole model, gradients are averaged (torch DistributedDataParallel).

The Trainer wraps the model itself when it runs under a launcher; this strategy only says which
backend the runtime uses (gloo on the CPU, nccl on CUDA, hccl on Ascend, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swift_core.config.arguments import arg
from swift_core.strategies.base import Strategy, StrategyContext


@dataclass(kw_only=True)
class DDPOptions:
    ddp_find_unused_parameters: bool = arg(
        False,
        help="Let DDP look for parameters without gradients every step (only for models with unused branches)",
    )


class DDPStrategy(Strategy):
    name = "ddp"

    def trainer_arguments(self, args: Any, ctx: StrategyContext) -> dict[str, Any]:
        options = ctx.options or DDPOptions()
        return {
            "ddp_backend": ctx.runtime.dist_backend,
            "ddp_find_unused_parameters": options.ddp_find_unused_parameters,
        }
