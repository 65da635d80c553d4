"""Decisions the main process makes for every process of a run (the run folder, the checkpoint to resume).

Each rank deciding for itself would give two run folders (each takes the next free `vN`), or two
ranks resuming from different checkpoints. The main process decides and broadcasts; an error it
meets is raised on every rank, so none waits forever for an answer that will not come. The
process group is created here when none exists yet, with the runtime's backend; the Trainer (and
accelerate, DeepSpeed) then use that same group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from swift_core.distributed.ranks import is_distributed

T = TypeVar("T")


def ensure_process_group(backend: str) -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend=backend)


def decided_by_main(decide: Callable[[], T], backend: str = "gloo") -> T:
    """`decide()` run on global rank 0 only; every rank gets its result (or its exception)."""
    if not is_distributed():
        return decide()
    import torch.distributed as dist

    ensure_process_group(backend)
    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", decide())
        except Exception as exc:  # noqa: BLE001 - re-raised on every rank below
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value
