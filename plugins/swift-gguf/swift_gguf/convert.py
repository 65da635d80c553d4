"""Write a Hugging Face causal-LM folder as one GGUF file, the way llama.cpp reads it.

The layout follows what llama.cpp's own `convert_hf_to_gguf.py` writes (this is an independent
implementation on the `gguf` package, the library llama.cpp publishes for it):

- metadata: `general.*` (architecture, type, name, file type, quantization version), the
  architecture's hyper-parameters (`{arch}.context_length`, `.embedding_length`, `.block_count`,
  `.feed_forward_length`, `.attention.head_count(_kv)`, `.rope.freq_base`,
  `.attention.layer_norm_rms_epsilon`, ...) and the tokenizer (`tokenizer.ggml.*`, see
  `swift_gguf.tokenizer`), chat template included;
- tensors: Hugging Face names mapped to GGUF names by the package's `gguf.TensorNameMap` of the
  architecture; 1-D tensors (norms, biases) in F32; 2-D weights in the chosen type where their
  row length is a multiple of the type's block size, else F16 (reported as fallbacks); below
  8 bits the output projection (or the tied embedding that serves as it) in Q8_0, as llama.cpp's
  `llama-quantize` keeps it high; Llama's q/k rows reordered for llama.cpp's rotary layout.

Tensors are read, converted and written one at a time (a first pass plans every tensor from the
safetensors headers), so memory stays near the largest tensor, not the model.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swift_core.errors import SwiftError
from swift_gguf.architectures import ArchSpec, arch_spec, read_config
from swift_gguf.tokenizer import Vocabulary, read_vocabulary
from swift_gguf.types import GgufType

_BLOCK = re.compile(r"^blk\.(\d+)\.")
# Buffers some checkpoints carry that are not weights.
_SKIPPED_SUFFIXES = ("rotary_emb.inv_freq",)
F16_MAX = 65504.0


@dataclass
class TensorPlan:
    gguf_name: str
    shape: tuple[int, ...]  # numpy order: (rows, row length) for a weight matrix
    qtype: str  # gguf.GGMLQuantizationType member
    hf_name: str | None = None  # None: a tensor made here (rope_freqs)
    permute_heads: int | None = None  # Llama q/k: reorder the rows of this many heads
    fallback: bool = False  # a 2-D weight written in F16 because its rows do not fit the type's blocks
    data: Any = None  # the values of a tensor made here

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


@dataclass
class ConversionReport:
    path: Path
    architecture: str  # the GGUF architecture name: "qwen2"
    gguf_type: GgufType
    tensors: list[TensorPlan]
    vocabulary: Vocabulary
    context_length: int | None
    hf_to_gguf: dict[str, str] = field(default_factory=dict)

    @property
    def fallback_tensors(self) -> list[str]:
        return [t.gguf_name for t in self.tensors if t.fallback]

    @property
    def tensor_types(self) -> dict[str, int]:
        return dict(Counter(t.qtype for t in self.tensors))


# ---------------------------------------------------------------------------------------------
# The source folder


class _Safetensors:
    """The tensors of a model folder's safetensors files: names, shapes, values one at a time."""

    def __init__(self, model_dir: Path, stack: ExitStack):
        from safetensors import safe_open

        files = self._files(model_dir)
        self._handles = [stack.enter_context(safe_open(str(f), framework="pt")) for f in files]
        self._where: dict[str, Any] = {}
        for handle in self._handles:
            for name in handle.keys():  # noqa: SIM118 (a safe_open handle is not a mapping)
                self._where[name] = handle

    @staticmethod
    def _files(model_dir: Path) -> list[Path]:
        index = model_dir / "model.safetensors.index.json"
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}
            files = sorted({model_dir / f for f in weight_map.values()})
        else:
            files = sorted(model_dir.glob("*.safetensors"))
        if not files:
            found = "pytorch_model.bin (pickle)" if any(model_dir.glob("*.bin")) else "no weights"
            raise SwiftError(
                f"{model_dir}: {found}; --quant_method gguf reads safetensors weights only "
                f"(save the model with save_pretrained(safe_serialization=True))"
            )
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise SwiftError(
                f"{model_dir}: weight files named by the index are missing: {', '.join(missing)}"
            )
        return files

    def names(self) -> list[str]:
        return list(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._where[name].get_slice(name).get_shape())

    def float32(self, name: str) -> np.ndarray:
        import torch

        return self._where[name].get_tensor(name).to(torch.float32).numpy()


def _rope(config: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """(rope theta, scaling parameters) from a transformers 4 (`rope_theta`, `rope_scaling`) or
    transformers 5 (`rope_parameters`) config."""
    params: dict[str, Any] = dict(config.get("rope_scaling") or {})
    params.update(config.get("rope_parameters") or {})
    theta = params.get("rope_theta", config.get("rope_theta", 10000.0))
    return float(theta), params


def _llama3_rope_factors(
    config: dict[str, Any], head_dim: int, theta: float, params: dict[str, Any]
) -> np.ndarray:
    """Llama 3.1's frequency-dependent RoPE scaling as llama.cpp's `rope_freqs` tensor: for each
    rotary frequency, the divisor llama.cpp applies to it (1 for high frequencies, `factor` for
    low ones, a smooth blend between)."""
    factor = float(params["factor"])
    low, high = float(params.get("low_freq_factor", 1.0)), float(params.get("high_freq_factor", 4.0))
    old_context = float(
        params.get("original_max_position_embeddings") or config.get("max_position_embeddings") or 8192
    )
    freqs = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * math.pi / freqs
    smooth = (old_context / wavelen - low) / (high - low)
    blended = 1.0 / ((1 - smooth) / factor + smooth)
    divisors = np.where(
        wavelen < old_context / high, 1.0, np.where(wavelen > old_context / low, factor, blended)
    )
    return divisors.astype(np.float32)


def _check_model(config: dict[str, Any], spec: ArchSpec, where: str) -> None:
    act = config.get("hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise SwiftError(f"{where}: hidden_act {act!r}; llama.cpp's {spec.model_type} graph computes SiLU")
    if config.get("use_sliding_window"):
        raise SwiftError(
            f"{where}: use_sliding_window is true; llama.cpp's {spec.model_type} graph has no sliding "
            f"window attention, the GGUF would attend differently"
        )


# ---------------------------------------------------------------------------------------------
# Planning


def _tensor_type(
    gguf_name: str, shape: tuple[int, ...], chosen: GgufType, is_output: bool
) -> tuple[str, bool]:
    """(GGML type, fell back to F16) for one tensor."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    if len(shape) < 2:
        return "F32", False  # norms and biases: llama.cpp keeps them F32
    qtype = chosen.ggml
    if is_output and chosen.low_bit:
        qtype = "Q8_0"
    block = GGML_QUANT_SIZES[GGMLQuantizationType[qtype]][0]
    if shape[-1] % block:
        return ("F16" if chosen.ggml != "F32" else "F32"), True
    return qtype, False


def _sort_key(plan: TensorPlan) -> tuple[int, int, str]:
    match = _BLOCK.match(plan.gguf_name)
    if match:
        return (1, int(match.group(1)), plan.gguf_name)
    return (0 if plan.gguf_name.startswith(("token_embd", "rope_freqs")) else 2, 0, plan.gguf_name)


def plan_tensors(
    source: _Safetensors, config: dict[str, Any], spec: ArchSpec, chosen: GgufType
) -> list[TensorPlan]:
    import gguf

    arch = gguf.MODEL_ARCH[spec.gguf_arch]
    n_blocks = int(config["num_hidden_layers"])
    name_map = gguf.get_tensor_name_map(arch, n_blocks)
    tied = bool(config.get("tie_word_embeddings", False))
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)

    plans: list[TensorPlan] = []
    unmapped: list[str] = []
    for hf_name in source.names():
        if hf_name.endswith(_SKIPPED_SUFFIXES) or (tied and hf_name == "lm_head.weight"):
            continue
        found = name_map.get_type_and_name(hf_name, try_suffixes=(".weight", ".bias"))
        if found is None:
            unmapped.append(hf_name)
            continue
        kind, gguf_name = found
        shape = source.shape(hf_name)
        permute = None
        if spec.permute_qk and kind == gguf.MODEL_TENSOR.ATTN_Q:
            permute = n_head
        elif spec.permute_qk and kind == gguf.MODEL_TENSOR.ATTN_K:
            permute = n_head_kv
        plans.append(
            TensorPlan(gguf_name=gguf_name, shape=shape, qtype="", hf_name=hf_name, permute_heads=permute)
        )
    if unmapped:
        shown = ", ".join(unmapped[:8]) + (f" and {len(unmapped) - 8} more" if len(unmapped) > 8 else "")
        raise SwiftError(
            f"--quant_method gguf: no GGUF name for {len(unmapped)} tensor(s) of this {spec.model_type} "
            f"checkpoint: {shown} (not a plain {spec.model_type} causal LM?)"
        )
    names = {p.gguf_name for p in plans}
    if "token_embd.weight" not in names:
        raise SwiftError(
            "--quant_method gguf: the checkpoint has no input embedding (model.embed_tokens.weight)"
        )
    has_output = "output.weight" in names

    theta, params = _rope(config)
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type == "llama3":
        head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // n_head)
        plans.append(
            TensorPlan(
                gguf_name=gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight",
                shape=(head_dim // 2,),
                qtype="F32",
                data=_llama3_rope_factors(config, head_dim, theta, params),
            )
        )

    for plan in plans:
        if plan.qtype:
            continue
        is_output = plan.gguf_name == "output.weight" or (
            not has_output and plan.gguf_name == "token_embd.weight"
        )
        plan.qtype, plan.fallback = _tensor_type(plan.gguf_name, plan.shape, chosen, is_output)
    plans.sort(key=_sort_key)
    return plans


def _nbytes(plan: TensorPlan) -> int:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[plan.qtype]]
    rows = plan.n_elements // plan.shape[-1]
    return rows * (plan.shape[-1] // block) * size


# ---------------------------------------------------------------------------------------------
# Metadata


def _write_metadata(
    writer: Any,
    config: dict[str, Any],
    spec: ArchSpec,
    chosen: GgufType,
    vocab: Vocabulary,
    n_vocab: int,
    model_dir: Path,
    name: str,
) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(gguf.LlamaFileType[chosen.file_type])

    n_head = int(config["num_attention_heads"])
    writer.add_vocab_size(n_vocab)
    if config.get("max_position_embeddings") is not None:
        writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or n_head))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    theta, params = _rope(config)
    writer.add_rope_freq_base(theta)
    head_dim = config.get("head_dim")
    if head_dim is not None:
        writer.add_key_length(int(head_dim))
        writer.add_value_length(int(head_dim))
    if spec.rope_dimension_count:
        writer.add_rope_dimension_count(int(head_dim or int(config["hidden_size"]) // n_head))

    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(params["factor"]))
    elif rope_type == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(params["factor"]))
        if params.get("original_max_position_embeddings") is not None:
            writer.add_rope_scaling_orig_ctx_len(int(params["original_max_position_embeddings"]))
    elif rope_type not in ("default", "llama3"):  # llama3: the rope_freqs tensor
        raise SwiftError(
            f"--quant_method gguf: rope scaling {rope_type!r} is not written (default, linear, yarn and "
            f"llama3 are)"
        )

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=n_vocab)
    if not special.merges:
        raise SwiftError(
            f"{model_dir / 'tokenizer.json'}: no BPE merges; llama.cpp cannot tokenize without them"
        )
    special.add_special_token["bos"] = vocab.add_bos
    special.add_special_token["eos"] = vocab.add_eos
    special.add_to_gguf(writer, quiet=True)
    vocab.special_ids = dict(special.special_token_ids)


# ---------------------------------------------------------------------------------------------
# Writing


def _interleave_rope_rows(weights: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder each head's rows from Hugging Face's rotary layout (first half of the head's
    dimensions rotate with the second half) to llama.cpp's (neighbouring rows rotate together)."""
    head_dim = weights.shape[0] // n_heads
    grouped = weights.reshape(n_heads, 2, head_dim // 2, *weights.shape[1:])
    return grouped.swapaxes(1, 2).reshape(weights.shape)


def _values(plan: TensorPlan, source: _Safetensors) -> np.ndarray:
    import gguf

    data = plan.data if plan.hf_name is None else source.float32(plan.hf_name)
    if plan.permute_heads is not None:
        data = _interleave_rope_rows(data, plan.permute_heads)
    data = np.ascontiguousarray(data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise SwiftError(
            f"gguf: {plan.hf_name or plan.gguf_name} holds inf or NaN values; the source is broken"
        )
    if plan.qtype == "F16" and float(np.abs(data).max(initial=0.0)) > F16_MAX:
        raise SwiftError(
            f"gguf: {plan.hf_name} has values beyond float16's range (|x| > {F16_MAX:g}); "
            f"use --gguf_type bf16 (or f32), which keep the source's range"
        )
    return gguf.quants.quantize(data, gguf.GGMLQuantizationType[plan.qtype])


def _blocks(plans: list[TensorPlan]) -> Iterator[tuple[int, TensorPlan]]:
    for plan in plans:
        match = _BLOCK.match(plan.gguf_name)
        yield (int(match.group(1)) if match else -1), plan


def convert(
    model_dir: Path,
    out_path: Path,
    chosen: GgufType,
    *,
    tokenizer_pre: str = "auto",
    name: str | None = None,
    log: Callable[[str], None] = print,
) -> ConversionReport:
    """Write `model_dir` (a Hugging Face causal-LM folder) to `out_path` as GGUF of type `chosen`."""
    import gguf

    model_dir = Path(model_dir)
    config = read_config(model_dir)
    where = str(model_dir / "config.json")
    spec = arch_spec(config, where)
    _check_model(config, spec, where)
    arch_name = gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH[spec.gguf_arch]]

    with ExitStack() as stack:
        source = _Safetensors(model_dir, stack)
        plans = plan_tensors(source, config, spec, chosen)
        n_vocab = next(p.shape[0] for p in plans if p.gguf_name == "token_embd.weight")
        vocab = read_vocabulary(model_dir, n_vocab, tokenizer_pre)

        writer = gguf.GGUFWriter(out_path, arch_name)
        try:
            _write_metadata(writer, config, spec, chosen, vocab, n_vocab, model_dir, name or model_dir.name)
            for plan in plans:
                writer.add_tensor_info(
                    plan.gguf_name,
                    plan.shape,
                    np.dtype(np.float32),
                    _nbytes(plan),
                    raw_dtype=gguf.GGMLQuantizationType[plan.qtype],
                )
            writer.write_header_to_file(out_path)
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            n_blocks = int(config["num_hidden_layers"])
            last_block = -1
            for block, plan in _blocks(plans):
                data = _values(plan, source)
                if data.nbytes != _nbytes(plan):  # the plan and the quantizer must agree byte for byte
                    raise SwiftError(
                        f"gguf: {plan.gguf_name}: {data.nbytes} bytes written, {_nbytes(plan)} planned"
                    )
                writer.write_tensor_data(data)
                if block > last_block:
                    last_block = block
                    if block == n_blocks - 1 or (block + 1) % max(1, n_blocks // 8) == 0:
                        log(f"block {block + 1}/{n_blocks} written")
        except BaseException:
            writer.close()
            out_path.unlink(missing_ok=True)  # nothing half-written left looking like a model
            raise
        writer.close()

    return ConversionReport(
        path=out_path,
        architecture=arch_name,
        gguf_type=chosen,
        tensors=plans,
        vocabulary=vocab,
        context_length=config.get("max_position_embeddings"),
        hf_to_gguf={p.hf_name: p.gguf_name for p in plans if p.hf_name},
    )
