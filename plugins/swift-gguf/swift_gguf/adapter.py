"""A PEFT LoRA adapter as a GGUF LoRA adapter (llama.cpp's `--lora FILE`, Ollama's `ADAPTER`).

llama.cpp reads an adapter as a GGUF file with `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, the base model's `general.architecture`, and for each adapted weight
`<gguf name>.weight.lora_a` (PEFT's lora_A, rank x in) and `.lora_b` (lora_B, out x rank). It
scales each pair by alpha / rank (the rank read from the tensor), as PEFT's plain LoRA does; an
rsLoRA adapter (alpha / sqrt(rank)) is written with alpha multiplied by sqrt(rank). Llama's q/k
rows are reordered like the base's (`convert._interleave_rope_rows`): the reordering applies to
the output rows, which are lora_B's.

What llama.cpp's adapters cannot hold is refused: DoRA, per-module alphas (`alpha_pattern`),
fully trained modules (`modules_to_save`), LoRA biases, LoRA on the embedding.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swift_core.errors import SwiftError
from swift_gguf.architectures import arch_spec, read_config

_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[A-Za-z0-9_-]+)?\.weight$"
)
ADAPTER_TYPES = ("F32", "F16", "BF16")


@dataclass
class AdapterReport:
    path: Path
    architecture: str
    alpha: float
    ranks: set[int]
    tensors: dict[str, str]  # GGUF module name -> Hugging Face module name


def _adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SwiftError(f"{adapter_dir}: no adapter_config.json (not a PEFT adapter folder)") from None
    except (OSError, ValueError) as exc:
        raise SwiftError(f"{path}: cannot read the adapter config: {exc}") from None
    where = str(path)
    if str(config.get("peft_type", "")).upper() != "LORA":
        raise SwiftError(f"{where}: peft_type {config.get('peft_type')!r}; GGUF adapters hold LoRA only")
    if config.get("use_dora"):
        raise SwiftError(
            f"{where}: a DoRA adapter; llama.cpp's GGUF adapters hold plain LoRA (merge it instead)"
        )
    if config.get("alpha_pattern"):
        raise SwiftError(
            f"{where}: per-module alphas (alpha_pattern); a GGUF adapter has one alpha (merge it)"
        )
    if config.get("modules_to_save"):
        raise SwiftError(
            f"{where}: fully trained modules ({', '.join(config['modules_to_save'])}) are not LoRA "
            f"weights; a GGUF adapter cannot carry them (merge the adapter instead)"
        )
    if config.get("bias", "none") != "none":
        raise SwiftError(
            f"{where}: bias={config['bias']!r}; a GGUF adapter holds no trained biases (merge it)"
        )
    if config.get("use_rslora") and config.get("rank_pattern"):
        raise SwiftError(
            f"{where}: rsLoRA with per-module ranks cannot be expressed with one alpha (merge it)"
        )
    return config


def _tensors(adapter_dir: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise SwiftError(f"{adapter_dir}: no adapter_model.safetensors (a pickled adapter is not read)")
    import torch

    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_tensor(k).to(torch.float32).numpy() for k in handle.keys()}  # noqa: SIM118


def convert_lora(
    adapter_dir: Path,
    base_dir: Path,
    out_path: Path,
    *,
    tensor_type: str = "F16",
    log: Callable[[str], None] = print,
) -> AdapterReport:
    """Write the PEFT LoRA adapter in `adapter_dir` (trained on the model in `base_dir`, whose
    config.json gives the architecture) to `out_path` as a GGUF LoRA adapter."""
    import gguf

    from swift_gguf.convert import _interleave_rope_rows

    adapter_dir, base_dir = Path(adapter_dir), Path(base_dir)
    if tensor_type not in ADAPTER_TYPES:
        raise SwiftError(f"a GGUF adapter is written in {', '.join(ADAPTER_TYPES)}; got {tensor_type}")
    config = _adapter_config(adapter_dir)
    base = read_config(base_dir)
    spec = arch_spec(base, str(base_dir / "config.json"))
    arch = gguf.MODEL_ARCH[spec.gguf_arch]
    name_map = gguf.get_tensor_name_map(arch, int(base["num_hidden_layers"]))
    n_head = int(base["num_attention_heads"])
    n_head_kv = int(base.get("num_key_value_heads") or n_head)

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in _tensors(adapter_dir).items():
        match = _KEY.match(key)
        if match is None:
            kind = "an embedding LoRA" if "lora_embedding" in key else "not a LoRA weight"
            raise SwiftError(f"{adapter_dir}: {key} is {kind}; a GGUF adapter cannot carry it (merge it)")
        pairs.setdefault(match["module"], {})[match["part"]] = value

    alpha = float(config.get("lora_alpha", 8))
    rank = int(config.get("r", 8))
    if config.get("use_rslora"):
        alpha *= math.sqrt(rank)  # llama.cpp scales by alpha / rank; rsLoRA by alpha / sqrt(rank)

    qtype = gguf.GGMLQuantizationType[tensor_type]
    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[arch])
    tensors: dict[str, str] = {}
    ranks: set[int] = set()
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_name(adapter_dir.name)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for module in sorted(pairs):
            parts = pairs[module]
            if set(parts) != {"A", "B"}:
                raise SwiftError(f"{adapter_dir}: {module} has lora_{''.join(parts)} only")
            found = name_map.get_type_and_name(module)
            if found is None or found[0] == gguf.MODEL_TENSOR.TOKEN_EMBD:
                raise SwiftError(
                    f"{adapter_dir}: no llama.cpp {spec.model_type} weight for the LoRA on {module}"
                    + (" (embedding LoRA)" if found else "")
                )
            kind, name = found
            lora_a, lora_b = parts["A"], parts["B"]
            if lora_a.ndim != 2 or lora_b.ndim != 2 or lora_a.shape[0] != lora_b.shape[1]:
                raise SwiftError(
                    f"{adapter_dir}: {module}: lora_A {lora_a.shape} and lora_B {lora_b.shape} do not pair"
                )
            if spec.permute_qk and kind == gguf.MODEL_TENSOR.ATTN_Q:
                lora_b = _interleave_rope_rows(lora_b, n_head)
            elif spec.permute_qk and kind == gguf.MODEL_TENSOR.ATTN_K:
                lora_b = _interleave_rope_rows(lora_b, n_head_kv)
            for suffix, values in ((".weight.lora_a", lora_a), (".weight.lora_b", lora_b)):
                data = gguf.quants.quantize(np.ascontiguousarray(values, dtype=np.float32), qtype)
                writer.add_tensor(name + suffix, data, raw_dtype=qtype)  # shape from the data
            tensors[name] = module
            ranks.add(int(lora_a.shape[0]))
        if not tensors:
            raise SwiftError(f"{adapter_dir}: the adapter has no LoRA weights")
        writer.write_header_to_file(out_path)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        Path(out_path).unlink(missing_ok=True)
        raise
    writer.close()
    log(f"LoRA adapter: {len(tensors)} weights, rank {', '.join(map(str, sorted(ranks)))}, alpha {alpha:g}")
    return AdapterReport(
        path=Path(out_path),
        architecture=gguf.MODEL_ARCH_NAMES[arch],
        alpha=alpha,
        ranks=ranks,
        tensors=tensors,
    )
