"""New weights into a served model in place: what an engine's `update_weights` shares.

GRPO keeps its rollout engine in step with the policy by sending the full, adapter-merged model
in Hugging Face names after every optimizer step (`swift_core.rl.rollout.merged_weights`). An
engine that loads them in place (no rebuild) is `swift_core.rl.rollout.SupportsWeightUpdate`;
over HTTP (`swift deploy --enable_weight_updates`, `POST /v1/weights`) they cross as one
safetensors file on a disk both processes see, written atomically here and read by the server.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError


class WeightsRefused(SwiftError):
    """The given weights do not fit the served model (unknown names, other shapes): HTTP 400."""


def base_parameter_names(model: Any) -> dict[str, Any]:
    """The model's tensors by their Hugging Face names: peft's LoRA layers taken out of the
    names (`.base_layer`) and their own weights left out, so an adapter-serving engine takes the
    same names as a plain one."""
    out: dict[str, Any] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if "lora_" in name or "modules_to_save" in name:
            continue
        out[name.replace(".base_layer", "")] = tensor
    return out


def copy_weights(targets: dict[str, Any], weights: Iterable[tuple[str, Any]]) -> int:
    """Copy each (name, tensor) into `targets[name]` in place (cast to its dtype and device);
    every name is checked (known, same shape) before anything is copied, so a refused update
    leaves the model as it was. Returns the number of tensors copied."""
    import torch

    given = list(weights)
    if not given:
        raise WeightsRefused("no weights given")
    unknown = [n for n, _ in given if n not in targets]
    if unknown:
        raise WeightsRefused(
            f"{len(unknown)} weight(s) the served model does not have, e.g. {unknown[0]!r} "
            "(is the server serving the model the trainer trains?)"
        )
    for name, tensor in given:
        if tuple(tensor.shape) != tuple(targets[name].shape):
            raise WeightsRefused(
                f"weight {name!r} has shape {tuple(tensor.shape)}, the served model's {tuple(targets[name].shape)}"
            )
    with torch.no_grad():
        for name, tensor in given:
            targets[name].copy_(tensor)
    return len(given)


def private_weights_folder(prefix: str) -> Path:
    """A private folder for weights files: in RAM where the machine has /dev/shm."""
    shm = Path("/dev/shm")
    parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def write_weights_file(weights: Iterable[tuple[str, Any]], path: Path) -> int:
    """(name, tensor) pairs as one safetensors file at `path`, written under another name and
    renamed, so a reader never sees half a file. Tensors sharing storage (tied embeddings) are
    copied, as safetensors refuses shared storage. Returns the number of tensors."""
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    seen: set[int] = set()
    for name, tensor in weights:
        t = tensor.detach().to("cpu")
        pointer = t.untyped_storage().data_ptr()
        t = t.contiguous().clone() if pointer in seen else t.contiguous()
        seen.add(pointer)
        if name in tensors:
            raise SwiftError(f"update_weights: weight {name!r} given twice")
        tensors[name] = t
    if not tensors:
        raise SwiftError("update_weights: no weights given")
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial))
    os.replace(partial, path)
    return len(tensors)


def read_weights_file(path: str) -> list[tuple[str, Any]]:
    """The (name, tensor) pairs of a safetensors file; a missing or unreadable file is refused
    naming the path (the usual cause: the trainer and the server do not share that disk)."""
    from safetensors.torch import load_file

    if not os.path.isfile(path):
        raise WeightsRefused(
            f"no weights file at {path} on the server (server mode sends weights as a file path: the "
            "trainer and the server must share that disk)"
        )
    try:
        return list(load_file(path).items())
    except Exception as exc:  # safetensors raises its own error types for a corrupt header
        raise WeightsRefused(f"cannot read the weights file {path}: {type(exc).__name__}: {exc}") from None
