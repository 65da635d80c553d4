"""`swift export` (merge adapters, and/or quantize) and `swift quantize` (the article's spelling).

`swift export --adapters CKPT --merge_lora true` writes a merged full-precision model;
`swift export --quant_method METHOD` (with `--adapters CKPT`: merged first) and
`swift quantize --model M --method METHOD --output_dir O` write a quantized one through an
export-time quantizer plugin, whose own options are flags of both commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.config.arguments import arg
from swift_core.errors import SwiftError


@dataclass(kw_only=True)
class ExportArguments:
    ARG_GROUP: ClassVar[str] = "model"
    # The quantizers' own options (group size, GGUF type, ...) are flags of export and quantize.
    CAPABILITY_KINDS: ClassVar[tuple[str, ...]] = ("quantizers:export_time",)

    adapters: str | None = arg(
        None, help="A complete checkpoint folder written by swift sft/pt/rlhf", aliases=("ckpt_dir",)
    )
    model: str | None = arg(
        None,
        help="A model folder to quantize, or the base model of --adapters (default: the checkpoint's)",
        aliases=("model_id_or_path",),
    )
    model_type: str | None = arg(None, help="Model family, when it cannot be inferred from the model")
    template: str | None = arg(
        None, help="Chat template for calibration rows (default: the checkpoint's or family's)"
    )
    trust_remote_code: bool = arg(
        False, help="Run the Python code a model folder ships (auto_map): only for folders you trust"
    )
    merge_lora: bool = arg(False, help="Merge the adapter into the base weights", group="export")
    output_dir: str | None = arg(
        None, help="Where to write (default: CHECKPOINT-merged, or SOURCE-METHOD)", group="export"
    )
    torch_dtype: str | None = arg(
        None,
        help="float32, bfloat16 or float16 (default: the training dtype)",
        aliases=("dtype",),
        group="export",
    )
    device: str = arg("auto", help="auto, cpu, cuda, ...: where the quantizer runs", group="export")
    quant_method: str | None = arg(
        None,
        help="An export-time quantizer plugin: awq, gptq, w8a8, fp8, bnb, gguf, ... (the installed ones and "
        "their options are listed below)",
        aliases=("method",),
        group="quantization",
    )
    quant_bits: int | None = arg(
        None,
        help="Bits of the quantized weights (default: the method's)",
        aliases=("quantization_bit",),
        group="quantization",
    )
    dataset: list[str] = arg(
        [],
        help="Calibration data: files, folders, registered names (rendered by the chat template)",
        group="quantization",
    )
    quant_n_samples: int = arg(128, help="Calibration rows", group="quantization")
    quant_seqlen: int = arg(
        512,
        help="Calibration rows are cut to this many tokens",
        aliases=("max_length",),
        group="quantization",
    )
    quant_eval_samples: int = arg(
        16, help="Rows held out to measure perplexity before/after (0: skip)", group="quantization"
    )
    seed: int = arg(42, help="Shuffles the rows before they are split", group="quantization")


def _export(args: ExportArguments) -> Any:
    if args.quant_method:
        from swift_core.export.quantize import run_quantize

        return run_quantize(args)
    if not args.merge_lora:
        raise SwiftError(
            "nothing to do: pass --merge_lora true (merge an adapter) and/or --quant_method METHOD (quantize)"
        )
    if not args.adapters:
        raise SwiftError("--merge_lora needs --adapters CHECKPOINT")
    from swift_core.export.merge import merge_adapter

    merge_adapter(args.adapters, args.output_dir, args.model, args.torch_dtype, args=args)


def _quantize(args: ExportArguments) -> Any:
    from swift_core.export.quantize import run_quantize

    return run_quantize(args)


export = dataclass_command(
    "export", ExportArguments, _export, "Merge LoRA adapters into a full model, and/or quantize it."
)
quantize = dataclass_command(
    "quantize", ExportArguments, _quantize, "Quantize a model or checkpoint (AWQ, GPTQ, FP8, bnb, GGUF, ...)."
)
