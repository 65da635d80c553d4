"""Which strategy a training run uses: the one whose flag is given, else DDP when distributed.

No pipeline branches on a strategy's name: each strategy's descriptor says which of its options
turns it on (`activated_by`), and one descriptor is the default of a multi-process run.
"""

from __future__ import annotations

from typing import Any

from swift_core.errors import SwiftError


def select_strategy(args: Any, manager: Any, world_size: int) -> Any | None:
    """The descriptor of the strategy this run uses, or None for one process without one."""
    registry = manager.registry("strategies")
    active = [
        d for d in registry if d.activated_by and getattr(args, d.activated_by, None) not in (None, "", [])
    ]
    if len(active) > 1:
        flags = " and ".join(f"--{d.activated_by} {_shown(getattr(args, d.activated_by))}" for d in active)
        raise SwiftError(
            f"{flags}: pick one strategy ({', '.join(d.name for d in active)} each shard the model and "
            "sync gradients their own way; they cannot be combined)"
        )
    if active:
        return active[0]
    if world_size > 1:
        defaults = [d for d in registry if d.default_distributed]
        if not defaults:
            raise SwiftError(
                f"{world_size} processes but no installed strategy takes a plain multi-process run "
                f"(installed: {', '.join(registry.names()) or 'none'})"
            )
        return defaults[0]
    return None


def check_world_size(descriptor: Any | None, world_size: int) -> None:
    """A strategy shards over several processes: on one, say how to get more."""
    if descriptor is not None and world_size < 2:
        raise SwiftError(
            f"strategy {descriptor.name} (--{descriptor.activated_by or 'strategy'}) needs several processes: "
            "add --nproc_per_node N (Swift starts torchrun), or start under torchrun"
        )


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
