"""The GGUF export-time quantizer: a Hugging Face folder in, one .gguf file for llama.cpp and
Ollama out (plus an Ollama Modelfile next to it).

Imported only when `--quant_method gguf` is selected; `check` stays light (no gguf, numpy or torch),
the conversion imports them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swift_core.config.options import options_for
from swift_core.errors import SwiftError
from swift_core.quantizers.base import ExportJob, ExportResult, Quantizer, library_versions
from swift_gguf.architectures import arch_spec, read_config
from swift_gguf.options import GgufOptions
from swift_gguf.types import resolve_type

LOADS_IN = ["llama.cpp", "ollama", "transformers"]


def _options(options: Any) -> GgufOptions:
    return options if isinstance(options, GgufOptions) else GgufOptions()


def file_name(options: GgufOptions, default: str) -> str:
    """--gguf_file_name, else `default`; a plain name ending in .gguf."""
    name = (options.gguf_file_name or "").strip() or default
    if "/" in name or "\\" in name or not name.endswith(".gguf") or name == ".gguf":
        raise SwiftError(f"--gguf_file_name must be a plain file name ending in .gguf, got {name!r}")
    return name


def _modelfile(gguf_file: str, stop_tokens: list[str]) -> str:
    """An Ollama Modelfile for the file: `ollama create NAME -f Modelfile`. Ollama takes the chat
    template from the GGUF's tokenizer.chat_template; the stops are the model's end-of-turn tokens."""
    lines = [f"FROM ./{gguf_file}"]
    lines += [f'PARAMETER stop "{token}"' for token in stop_tokens if '"' not in token]
    return "\n".join(lines) + "\n"


def _stop_tokens(model_dir: Path, tokens: list[str]) -> list[str]:
    import json

    ids: list[int] = []
    for name in ("generation_config.json", "config.json"):
        path = model_dir / name
        if not path.is_file():
            continue
        try:
            value = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, ValueError):
            continue
        if value is not None:
            ids = value if isinstance(value, list) else [value]
            break
    return [tokens[i] for i in ids if isinstance(i, int) and 0 <= i < len(tokens)]


class GgufQuantizer(Quantizer):
    name = "gguf"
    calibration = "none"

    def check(self, args: Any) -> None:
        options = options_for(args, GgufOptions)
        chosen = resolve_type(options.gguf_type, getattr(args, "quant_bits", None))
        file_name(options, f"model-{chosen.scheme}.gguf")
        # The architecture is cheap to know when the model is a local folder: refuse it now.
        model = getattr(args, "model", None)
        if isinstance(model, (str, Path)) and model and (Path(model) / "config.json").is_file():
            arch_spec(read_config(Path(model)), str(Path(model) / "config.json"))

    def export(self, job: ExportJob) -> ExportResult:
        from swift_gguf.convert import convert

        options = _options(job.options)
        chosen = resolve_type(options.gguf_type, job.bits)
        name = file_name(options, f"model-{chosen.scheme}.gguf")
        out_path = Path(job.output_dir) / name
        job.log(f"writing {out_path.name} ({chosen.scheme}: {chosen.description})")
        report = convert(
            Path(job.model_dir),
            out_path,
            chosen,
            tokenizer_pre=options.gguf_tokenizer_pre,
            log=job.log,
        )
        stops = _stop_tokens(Path(job.model_dir), report.vocabulary.tokens)
        (Path(job.output_dir) / "Modelfile").write_text(_modelfile(name, stops), encoding="utf-8")
        fallbacks = report.fallback_tensors
        if fallbacks:
            job.log(
                f"{len(fallbacks)} weight(s) kept in F16 (rows not a multiple of {chosen.block_size}): "
                + ", ".join(fallbacks[:6])
                + (" ..." if len(fallbacks) > 6 else "")
            )
        gguf_to_hf = {g: h for h, g in report.hf_to_gguf.items()}
        return ExportResult(
            format="gguf",
            scheme=chosen.scheme,
            bits=chosen.bits,
            group_size=chosen.block_size if chosen.block_size > 1 else None,
            ignored_modules=[gguf_to_hf.get(t, t).removesuffix(".weight") for t in fallbacks],
            weight_files=[name],
            library_versions=library_versions(("gguf", "numpy")),
            loads_in=list(LOADS_IN),
            extra={
                "gguf_file": name,
                "architecture": report.architecture,
                "tokenizer_pre": report.vocabulary.pre,
                "tensor_types": report.tensor_types,
                "fallback_tensors": fallbacks,
                "output_type": next(
                    (t.qtype for t in report.tensors if t.gguf_name == "output.weight"),
                    next(t.qtype for t in report.tensors if t.gguf_name == "token_embd.weight"),
                ),
                "modelfile": "Modelfile",
            },
        )

    def export_adapter(self, job: ExportJob, adapter_dir: Path) -> ExportResult:
        """Write the PEFT LoRA adapter in `adapter_dir` as a GGUF LoRA adapter for the base model in
        `job.model_dir` (llama.cpp `--lora`, Ollama `ADAPTER`), instead of merging it.

        Not called by the core's export pipeline yet (it merges adapters first); the lora tensors are
        F16 (F32 with --gguf_type f32, BF16 with bf16): low-rank factors are small, and llama.cpp
        adds their product to whatever type the base file holds.
        """
        from swift_gguf.adapter import convert_lora

        options = _options(job.options)
        chosen = resolve_type(options.gguf_type, job.bits)
        tensor_type = chosen.ggml if chosen.ggml in ("F32", "BF16") else "F16"
        name = file_name(options, f"adapter-{tensor_type}.gguf")
        report = convert_lora(
            Path(adapter_dir),
            Path(job.model_dir),
            Path(job.output_dir) / name,
            tensor_type=tensor_type,
            log=job.log,
        )
        return ExportResult(
            format="gguf",
            scheme=f"LORA_{tensor_type}",
            bits=32 if tensor_type == "F32" else 16,
            weight_files=[name],
            library_versions=library_versions(("gguf", "numpy")),
            loads_in=["llama.cpp", "ollama"],
            extra={
                "gguf_file": name,
                "general_type": "adapter",
                "architecture": report.architecture,
                "lora_alpha": report.alpha,
                "lora_ranks": sorted(report.ranks),
                "lora_modules": sorted(report.tensors.values()),
            },
        )

    def load_exported(self, output_dir: Path, result: ExportResult) -> Any:
        """The GGUF file through transformers' GGUF loader (it dequantizes every tensor to float32)."""
        import torch
        from transformers import AutoModelForCausalLM

        name = (result.extra or {}).get("gguf_file") or result.weight_files[0]
        return AutoModelForCausalLM.from_pretrained(Path(output_dir), gguf_file=name, dtype=torch.float32)
