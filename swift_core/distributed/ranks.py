"""Which process of a distributed run this is, from the launcher's environment.

Read from the environment (RANK, LOCAL_RANK, WORLD_SIZE, as torchrun sets them) rather than
from torch.distributed, so that it answers before any process group exists and without torch:
the pipelines use it to let only the main process print and write the run folder.
"""

from __future__ import annotations

import os


def _env_int(name: str, default: int) -> int:
    value = (os.environ.get(name) or "").strip()
    return int(value) if value.isdigit() else default


def world_size() -> int:
    return _env_int("WORLD_SIZE", 1)


def rank() -> int:
    return _env_int("RANK", 0)


def local_rank() -> int:
    return _env_int("LOCAL_RANK", 0)


def is_distributed() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    """Global rank 0 (or not distributed): the one process that prints and writes the run folder."""
    return rank() == 0


def echo_main(message: str = "", **kwargs: object) -> None:
    """`click.echo` on the main process only: a run's messages are printed once, not once per rank."""
    if is_main_process():
        import click

        click.echo(message, **kwargs)  # type: ignore[arg-type]


def quiet_unless_main() -> None:
    """Libraries' notices on the main process only (the other ranks still report errors)."""
    if not is_main_process():
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DATASETS_VERBOSITY", "error")
        os.environ.setdefault("TQDM_DISABLE", "1")
