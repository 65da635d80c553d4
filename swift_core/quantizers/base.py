"""The quantizer interface.

Load-time quantizers (bitsandbytes for QLoRA) hand `from_pretrained` its quantization config
and prepare the loaded model for training. Export-time quantizers (`swift export --quant_method`,
`swift quantize --method`) turn a full-precision Hugging Face folder into a quantized artifact:
they are given an `ExportJob` (the source folder, an empty folder to write into, their options and
the calibration rows already rendered by the chat template) and answer with an `ExportResult`
that the export pipeline writes into the output's manifest. The pipeline owns everything around
the library call: merging adapters first, calibration data, the atomic output folder, reloading
the result with `load_exported` and measuring it against the source (size, perplexity, a greedy
generation). The pipeline asks the descriptor's `load_time`/`export_time` flags, never the name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any


def library_versions(distributions: Iterable[str]) -> dict[str, str]:
    """Installed version of each distribution (those not installed are left out): what a manifest
    records so that an artifact can be traced to the libraries that wrote it."""
    found = {}
    for name in distributions:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass
class ExportJob:
    """What an export-time quantizer is given."""

    model_dir: Path  # a complete full-precision Hugging Face folder (adapters already merged)
    output_dir: Path  # an empty folder: write the quantized artifact here (renamed when complete)
    bits: int | None  # --quant_bits, or None for the quantizer's default
    options: Any  # the quantizer's own options (its descriptor's dataclass), or None
    # Calibration rows as token ids, rendered by the model's chat template and cut to --quant_seqlen
    # (empty when the user gave no --dataset; `Quantizer.calibration` says whether that is allowed).
    calibration: list[list[int]] = field(default_factory=list)
    torch_dtype: str | None = None  # the dtype the source is loaded in (None: its own)
    runtime: Any = None  # the chosen HardwareRuntime
    family: Any = None  # the ModelFamily of the source, when known
    log: Callable[[str], None] = print  # progress lines for the user (stderr)


@dataclass
class ExportResult:
    """What a quantizer reports about the artifact it wrote (the manifest's core)."""

    format: str  # "compressed-tensors", "gptq", "bitsandbytes", "gguf", ...
    scheme: str  # "W4A16", "W8A8", "FP8_DYNAMIC", "nf4", "Q8_0", ...
    bits: int | None = None
    group_size: int | None = None
    ignored_modules: list[str] = field(default_factory=list)
    # The files that hold the weights (relative to output_dir): sizes are reported from these.
    weight_files: list[str] = field(default_factory=list)
    # Distribution -> version of the libraries that produced the artifact.
    library_versions: dict[str, str] = field(default_factory=dict)
    # Where the artifact loads, for the manifest and the summary ("transformers", "vllm", "llama.cpp").
    loads_in: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Quantizer:
    name: str = ""
    # Export-time: whether calibration rows are "required" (GPTQ, AWQ), "optional" or "none" (FP8
    # dynamic, bnb, GGUF): the pipeline refuses a missing --dataset before any model loads.
    calibration: str = "none"

    def check(self, args: Any) -> None:
        """Refuse bad settings (e.g. unsupported bits) before any model is loaded."""

    def load_kwargs(self, args: Any, dtype: Any, runtime: Any = None) -> dict[str, Any]:
        """Extra keyword arguments for `from_pretrained`; `runtime` is the chosen `HardwareRuntime`
        (where the weights go: `runtime.device(local_rank)`)."""
        raise NotImplementedError(f"quantizer {self.name!r} cannot quantize at load time")

    def prepare_for_training(self, model: Any, args: Any) -> Any:
        """Make a quantized model trainable (casts, input gradients)."""
        return model

    def export(self, job: ExportJob) -> ExportResult:
        """Write a quantized copy of `job.model_dir` into `job.output_dir`."""
        raise NotImplementedError(f"quantizer {self.name!r} cannot export")

    def load_exported(self, output_dir: Path, result: ExportResult) -> Any:
        """The written artifact as a torch causal LM, for the pipeline's verification.

        The default reloads a Hugging Face folder with transformers (compressed-tensors, GPTQ and
        bitsandbytes folders carry their quantization config); a quantizer whose artifact needs
        another reader overrides it.
        """
        import transformers

        return transformers.AutoModelForCausalLM.from_pretrained(output_dir)
