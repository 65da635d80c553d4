"""Which Hugging Face architectures this plugin converts, and how they differ in GGUF.

Light on purpose (no gguf import): `check` reads a local config.json before any model loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError


@dataclass(frozen=True)
class ArchSpec:
    model_type: str  # config.json's model_type
    gguf_arch: str  # the gguf.MODEL_ARCH member: "QWEN2"
    # llama.cpp's Llama graph applies rotary embeddings to interleaved pairs, Hugging Face's to the
    # two halves of each head: the converter reorders the rows of q_proj/k_proj (its `permute`), and
    # transformers' GGUF loader undoes it. Qwen2/Qwen3 use the "neox" halves layout in both: no change.
    permute_qk: bool
    rope_dimension_count: bool  # llama.cpp's converter writes {arch}.rope.dimension_count


ARCHITECTURES: dict[str, ArchSpec] = {
    spec.model_type: spec
    for spec in (
        ArchSpec("qwen2", "QWEN2", permute_qk=False, rope_dimension_count=False),
        ArchSpec("qwen3", "QWEN3", permute_qk=False, rope_dimension_count=False),
        ArchSpec("llama", "LLAMA", permute_qk=True, rope_dimension_count=True),
    )
}


def supported_names() -> str:
    return ", ".join(ARCHITECTURES)


def read_config(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SwiftError(
            f"{path}: no config.json; --quant_method gguf needs a Hugging Face model folder"
        ) from None
    except (OSError, ValueError) as exc:
        raise SwiftError(f"{path}: cannot read the model config: {exc}") from None


def arch_spec(config: dict[str, Any], where: str = "config.json") -> ArchSpec:
    """The spec of the config's model_type, or a SwiftError naming the supported ones."""
    model_type = config.get("model_type")
    spec = ARCHITECTURES.get(str(model_type))
    if spec is None:
        archs = ", ".join(config.get("architectures") or []) or "unknown architecture"
        raise SwiftError(
            f"{where}: --quant_method gguf cannot convert model_type {model_type!r} ({archs}); "
            f"supported: {supported_names()}"
        )
    return spec
