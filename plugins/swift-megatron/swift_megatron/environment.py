"""What Megatron-Bridge needs, and what this machine lacks of it (said in one line, before launch).

Megatron-Bridge (and megatron-core under it) needs Python >= 3.12, a CUDA GPU (its kernels,
Transformer Engine and NCCL) and its own transformers pin; on a machine without them the useful
answer is which of the three is missing, not an ImportError from deep inside a worker.
"""

from __future__ import annotations

import importlib.util
import platform
import sys

from swift_core.errors import SwiftError

MIN_PYTHON = (3, 12)
INSTALL = (
    "pip install 'swift-megatron[megatron]' (plugins/swift-megatron) on a CUDA machine with Python >= 3.12"
)


def bridge_installed() -> bool:
    try:
        return importlib.util.find_spec("megatron.bridge") is not None
    except (ImportError, ValueError):  # no `megatron` package at all
        return False


def cuda_devices() -> int:
    """CUDA devices torch sees (0 without torch, or with a CPU build of torch)."""
    if importlib.util.find_spec("torch") is None:
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def missing() -> list[str]:
    """What this machine lacks for Megatron-Bridge, in the words of the error ([] when all is there)."""
    out = []
    if sys.version_info[:2] < MIN_PYTHON:
        out.append(f"Python {platform.python_version()}")
    if not bridge_installed():
        out.append("no megatron-bridge")
    if not cuda_devices():
        torch_version = ""
        if importlib.util.find_spec("torch") is not None:
            import torch

            torch_version = f" (torch {torch.__version__})"
        out.append(f"no CUDA device{torch_version}")
    return out


def require_megatron(flag: str) -> None:
    gaps = missing()
    if gaps:
        raise SwiftError(
            f"{flag} needs megatron-bridge, Python >= 3.12 and CUDA; this machine has {', '.join(gaps)}: "
            f"{INSTALL}"
        )
