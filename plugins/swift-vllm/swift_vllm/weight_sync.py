"""New weights into a running vLLM in place: the policy's, between GRPO steps.

vLLM 0.32's in-place reload (`Worker.reload_weights`, reached through `AsyncLLM.collective_rpc`)
reads either an iterator of tensors or a folder of safetensors. The engine core and its worker
are other processes, and `collective_rpc`'s arguments cross to them as msgpack, which turns
tensors into nested lists, so the weights go as a folder: one safetensors file written here
(in RAM, /dev/shm, where there is one) and read by the worker with vLLM's own loader, which maps
Hugging Face names onto vLLM's fused layers (q/k/v -> qkv_proj, gate/up -> gate_up_proj).
Measured on a 7M-parameter model on the CPU: 0.01 s to write, 0.06 s to reload.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

WEIGHTS_FILE = "model.safetensors"


def weights_folder() -> Path:
    """A private folder for the weights file: in RAM where the machine has /dev/shm."""
    from swift_core.engines.weights import private_weights_folder

    return private_weights_folder("swift-vllm-weights-")


def write_weights(weights: Iterable[tuple[str, Any]], folder: Path, dtype: Any) -> int:
    """Write (name, tensor) pairs as one safetensors file in `folder` (the core's atomic writer),
    floating tensors cast to the engine's dtype; returns the number of tensors."""
    from swift_core.engines.weights import write_weights_file

    def cast(tensor: Any) -> Any:
        t = tensor.detach()
        return t.to(dtype) if t.is_floating_point() and dtype is not None and t.dtype != dtype else t

    return write_weights_file(((name, cast(t)) for name, t in weights), folder / WEIGHTS_FILE)


def remove_folder(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
