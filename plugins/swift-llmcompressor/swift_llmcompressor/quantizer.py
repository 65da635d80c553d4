"""The export-time quantizers: AWQ, GPTQ, W8A8 (SmoothQuant+GPTQ) and FP8-dynamic through
llm-compressor's `oneshot`, written as compressed-tensors checkpoints.

Imported only when one of them is selected. `check` stays free of torch (it runs before any model
loads); `export` imports torch, transformers and llm-compressor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from swift_core.config.options import options_for
from swift_core.errors import SwiftError
from swift_core.quantizers.base import ExportJob, ExportResult, Quantizer, library_versions
from swift_llmcompressor.options import AwqOptions, CommonOptions, Fp8Options, GptqOptions, W8A8Options
from swift_llmcompressor.schemes import METHODS, PRESETS, Method, Plan, check_group_size, plan

FORMAT = "compressed-tensors"
LIBRARIES = ("llmcompressor", "compressed-tensors", "torch", "transformers")
# compressed-tensors checkpoints: transformers reads every scheme written here (dequantizing on the
# CPU); vLLM serves them with its compressed-tensors kernels.
LOADS_IN = ["transformers", "vllm"]
TARGETS = ["Linear"]


class LlmCompressorQuantizer(Quantizer):
    """One llm-compressor method; subclasses give its rules, options and recipe."""

    method: Method
    options_class: type[CommonOptions] = CommonOptions
    calibration = "required"

    # -- before anything loads ------------------------------------------------------------------

    def check(self, args: Any) -> None:
        options = options_for(args, self.options_class)
        planned = plan(self.method, getattr(args, "quant_bits", None), options)
        self.check_options(options)
        check_group_size(planned, getattr(args, "model", None))

    def check_options(self, options: Any) -> None:
        """Refuse the method's own options when out of range (the shared ones are checked by `plan`)."""

    def plan(self, job: ExportJob) -> tuple[Plan, Any]:
        options = job.options
        if options is None:
            options = self.options_class()
        elif not isinstance(options, self.options_class):
            options = options_for(options, self.options_class)
        planned = plan(self.method, job.bits, options)
        self.check_options(options)
        return planned, options

    # -- the library ----------------------------------------------------------------------------

    def recipe(self, planned: Plan, options: Any) -> list[Any]:
        raise NotImplementedError

    def scheme(self, planned: Plan) -> Any:
        """The preset as a compressed-tensors `QuantizationScheme`, with the planned group size."""
        from compressed_tensors.quantization import QuantizationArgs, preset_name_to_scheme

        scheme = preset_name_to_scheme(planned.scheme, TARGETS)
        if PRESETS[planned.scheme].strategy == "group":
            weights = scheme.weights.model_dump()
            if planned.group_size is None:
                weights.update(strategy="channel", group_size=None)
            else:
                weights.update(group_size=planned.group_size)
            scheme.weights = QuantizationArgs.model_validate(weights)
        return scheme

    def context(self) -> Any:
        """A context manager around the `oneshot` call (the AWQ CPU workaround)."""
        import contextlib

        return contextlib.nullcontext()

    # -- the export -----------------------------------------------------------------------------

    def export(self, job: ExportJob) -> ExportResult:
        planned, options = self.plan(job)
        check_group_size(planned, job.model_dir)
        rows = [list(map(int, row)) for row in job.calibration if len(row)]
        if self.calibration == "required" and not rows:
            raise SwiftError(
                f"--quant_method {self.name} calibrates on data and got no rows: pass --dataset "
                "(its rows are rendered by the model's chat template)"
            )

        from swift_llmcompressor.library import forward_warnings, import_llmcompressor

        import_llmcompressor()
        import torch
        from compressed_tensors.utils import match_named_modules
        from llmcompressor import oneshot
        from transformers import AutoModelForCausalLM

        dtype = _dtype(job.torch_dtype, torch)
        job.log(f"loading {job.model_dir} ({'its own dtype' if dtype == 'auto' else dtype})")
        model = AutoModelForCausalLM.from_pretrained(job.model_dir, dtype=dtype)
        model.eval()
        tokenizer = _tokenizer(job.model_dir)
        recipe = self.recipe(planned, options)
        layers = [name for name, _ in match_named_modules(model, TARGETS, list(planned.ignore))]
        if not layers:
            raise SwiftError(
                f"--quant_ignore {' '.join(planned.ignore)} leaves no linear layer of {job.model_dir} to quantize"
            )
        group = f", group size {planned.group_size}" if planned.group_size else ""
        kept = f"; kept in full precision: {', '.join(planned.ignore)}" if planned.ignore else ""
        job.log(
            f"{self.method.algorithm} -> {planned.scheme} ({planned.bits}-bit{group}): {len(layers)} linear layers{kept}"
        )
        data: dict[str, Any] = {}
        if self.calibration != "none":
            from datasets import Dataset

            data = {
                "dataset": Dataset.from_dict(
                    {"input_ids": rows, "attention_mask": [[1] * len(row) for row in rows]}
                ),
                "num_calibration_samples": len(rows),
                "max_seq_length": max(len(row) for row in rows),
                # the pipeline already sampled the rows with --seed
                "shuffle_calibration_samples": False,
            }
            job.log(f"calibrating on {len(rows)} rows of up to {data['max_seq_length']} tokens")
        elif rows:
            job.log(f"{planned.scheme} needs no calibration: the {len(rows)} calibration rows are not used")

        out = Path(job.output_dir)
        started = time.perf_counter()
        with forward_warnings(job.log), self.context():
            try:
                oneshot(model=model, recipe=recipe, processor=tokenizer, **data)
            except ValueError as exc:
                if "divisible by group_size" in str(exc):
                    raise SwiftError(
                        f"--quant_group_size {planned.group_size} does not fit every layer of {job.model_dir}: "
                        f"{exc}\n(choose a smaller group size, -1 for per-channel scales, or --quant_ignore "
                        "those layers)"
                    ) from exc
                raise
            quantized = time.perf_counter()
            job.log(f"quantized in {quantized - started:.1f}s; writing the compressed-tensors checkpoint")
            model.save_pretrained(out, save_compressed=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(out)

        weight_files = sorted(str(p.relative_to(out)) for p in out.glob("*.safetensors"))
        if not weight_files:
            raise SwiftError(f"llm-compressor wrote no safetensors weights into {out}")
        size = sum((out / f).stat().st_size for f in weight_files)
        job.log(f"wrote {len(weight_files)} weight file(s), {size / 2**20:.1f} MiB")
        preset = planned.preset
        return ExportResult(
            format=FORMAT,
            scheme=planned.scheme,
            bits=planned.bits,
            group_size=planned.group_size,
            ignored_modules=list(planned.ignore),
            weight_files=weight_files,
            library_versions=library_versions(LIBRARIES),
            loads_in=list(LOADS_IN),
            extra={
                "algorithm": self.method.algorithm,
                "weights": _describe_weights(planned),
                "activations": (
                    f"{preset.weight_type}{preset.activation_bits} dynamic per {preset.activation_strategy}"
                    if preset.activation_bits
                    else None
                ),
                "quantized_layers": len(layers),
                "calibration_rows": len(rows) if self.calibration != "none" else 0,
                "recipe": "recipe.yaml" if (out / "recipe.yaml").is_file() else None,
            },
        )


class AwqQuantizer(LlmCompressorQuantizer):
    name = "awq"
    method = METHODS["awq"]
    options_class = AwqOptions

    def recipe(self, planned: Plan, options: Any) -> list[Any]:
        from llmcompressor.modifiers.quantization import QuantizationModifier
        from llmcompressor.modifiers.transform import AWQModifier

        # AWQ only moves scale between layers; the quantization modifier after it quantizes with the
        # scheme that AWQ's search optimised for.
        return [
            AWQModifier(duo_scaling=bool(options.awq_duo_scaling), n_grid=int(options.awq_n_grid)),
            QuantizationModifier(
                targets=TARGETS, ignore=list(planned.ignore), config_groups={"group_0": self.scheme(planned)}
            ),
        ]

    def check_options(self, options: Any) -> None:
        n_grid = options.awq_n_grid
        if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 1:
            raise SwiftError(f"--awq_n_grid must be a positive number of grid points, got {n_grid!r}")

    def context(self) -> Any:
        from swift_llmcompressor.library import cpu_awq_pin_memory_workaround

        return cpu_awq_pin_memory_workaround()


class GptqQuantizer(LlmCompressorQuantizer):
    name = "gptq"
    method = METHODS["gptq"]
    options_class = GptqOptions

    def recipe(self, planned: Plan, options: Any) -> list[Any]:
        return [_gptq(self.scheme(planned), planned, options)]

    def check_options(self, options: Any) -> None:
        _check_dampening(options.gptq_dampening_frac)


class W8A8Quantizer(LlmCompressorQuantizer):
    name = "w8a8"
    method = METHODS["w8a8"]
    options_class = W8A8Options

    def recipe(self, planned: Plan, options: Any) -> list[Any]:
        from llmcompressor.modifiers.transform import SmoothQuantModifier

        # SmoothQuant first moves activation outliers into the weights (int8 activations cannot
        # hold them), then GPTQ quantizes the weights.
        return [
            SmoothQuantModifier(smoothing_strength=float(options.w8a8_smoothing_strength)),
            _gptq(self.scheme(planned), planned, options),
        ]

    def check_options(self, options: Any) -> None:
        _check_dampening(options.gptq_dampening_frac)
        strength = options.w8a8_smoothing_strength
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
            raise SwiftError(f"--w8a8_smoothing_strength must be between 0 and 1, got {strength!r}")


class Fp8Quantizer(LlmCompressorQuantizer):
    name = "fp8"
    method = METHODS["fp8"]
    options_class = Fp8Options
    calibration = "none"

    def recipe(self, planned: Plan, options: Any) -> list[Any]:
        from llmcompressor.modifiers.quantization import QuantizationModifier

        return [
            QuantizationModifier(
                targets=TARGETS, ignore=list(planned.ignore), config_groups={"group_0": self.scheme(planned)}
            )
        ]


def _describe_weights(planned: Plan) -> str:
    preset = planned.preset
    if preset.strategy == "block":
        where = "per 128x128 block"
    elif planned.group_size:
        where = f"per group of {planned.group_size}"
    else:
        where = "per output channel"
    symmetry = "symmetric" if preset.symmetric else "asymmetric (zero point)"
    return f"{preset.weight_type}{preset.weight_bits}, {symmetry}, {where}"


def _gptq(scheme: Any, planned: Plan, options: Any) -> Any:
    from llmcompressor.modifiers.quantization import GPTQModifier

    return GPTQModifier(
        targets=TARGETS,
        ignore=list(planned.ignore),
        config_groups={"group_0": scheme},
        dampening_frac=float(options.gptq_dampening_frac),
    )


def _check_dampening(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise SwiftError(f"--gptq_dampening_frac must be between 0 and 1 (exclusive), got {value!r}")


def _dtype(name: Any, torch: Any) -> Any:
    if name is None or name == "auto":
        return "auto"
    if isinstance(name, torch.dtype):
        return name
    value = getattr(torch, str(name).removeprefix("torch."), None)
    if not isinstance(value, torch.dtype):
        raise SwiftError(f"--torch_dtype {name!r} is not a torch dtype; use float32, bfloat16 or float16")
    return value


def _tokenizer(model_dir: Path) -> Any:
    """The source's tokenizer (written beside the weights), or None when the folder has none."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError):
        return None
