"""Which strategy a training run uses: the one whose flag is given, else DDP when distributed.

No pipeline branches on a strategy's name: each strategy's descriptor says which of its options
turn it on (`activated_by`: `--deepspeed`, or any of `--megatron`, `--tensor_model_parallel_size`,
...), and one descriptor is the default of a multi-process run.
"""

from __future__ import annotations

from typing import Any

from swift_core.errors import SwiftError

_NOT_GIVEN = (None, "", [], False)


def _given(args: Any, descriptor: Any) -> list[str]:
    """The activating options of `descriptor` that `args` gives a value to."""
    return [o for o in descriptor.activating_options() if getattr(args, o, None) not in _NOT_GIVEN]


def select_strategy(args: Any, manager: Any, world_size: int) -> Any | None:
    """The descriptor of the strategy this run uses, or None for one process without one."""
    registry = manager.registry("strategies")
    active = [d for d in registry if _given(args, d)]
    if len(active) > 1:
        flags = " and ".join(_flag(o, getattr(args, o)) for d in active for o in _given(args, d))
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


def check_world_size(descriptor: Any | None, world_size: int, args: Any = None) -> None:
    """Before any process starts: a strategy shards over several processes (on one, say how to get
    more), and, given the arguments, the strategy's own launch check (Megatron: TP x PP must divide
    the world size; its library must be importable here)."""
    if descriptor is None:
        return
    flag = (descriptor.activating_options() or ("strategy",))[0]
    if world_size < 2:
        raise SwiftError(
            f"strategy {descriptor.name} (--{flag}) needs several processes: "
            "add --nproc_per_node N (Swift starts torchrun), or start under torchrun"
        )
    if args is not None:
        descriptor.load()().check_launch(args, descriptor.options_from(args), world_size)


def _flag(option: str, value: Any) -> str:
    return f"--{option}" if value is True else f"--{option} {_shown(value)}"


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
