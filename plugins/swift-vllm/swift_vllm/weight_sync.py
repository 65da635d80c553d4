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

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

WEIGHTS_FILE = "model.safetensors"


def weights_folder() -> Path:
    """A private folder for the weights file: in RAM where the machine has /dev/shm."""
    shm = Path("/dev/shm")
    parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="swift-vllm-weights-", dir=parent))


def write_weights(weights: Iterable[tuple[str, Any]], folder: Path, dtype: Any) -> int:
    """Write (name, tensor) pairs as one safetensors file in `folder`, floating tensors cast to
    the engine's dtype; returns the number of tensors. Tensors that share storage (tied
    embeddings) are copied, as safetensors refuses shared storage."""
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    seen: set[int] = set()
    for name, tensor in weights:
        t = tensor.detach().to("cpu")
        if t.is_floating_point() and dtype is not None and t.dtype != dtype:
            t = t.to(dtype)
        pointer = t.untyped_storage().data_ptr()
        t = t.contiguous().clone() if pointer in seen else t.contiguous()
        seen.add(pointer)
        if name in tensors:
            raise ValueError(f"weight {name!r} given twice")
        tensors[name] = t
    if not tensors:
        raise ValueError("no weights given")
    partial = folder / (WEIGHTS_FILE + ".partial")
    save_file(tensors, str(partial))
    os.replace(partial, folder / WEIGHTS_FILE)  # the worker never reads a half-written file
    return len(tensors)


def remove_folder(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
