"""`swift export --quant_method M` / `swift quantize --method M`: one command from a checkpoint (or
a model) to a quantized artifact that is measured before it is called done.

The stages, none of which names a method (the quantizer plugin carries the behaviour):

1. checks that need no model: the method is an export-time quantizer, its bits and options are
   valid, calibration data is given when the method needs it, the output folder is free;
2. the full-precision source: a model folder, or a training checkpoint whose adapter is merged
   into the full-precision base first (never into an already quantized one);
3. calibration and held-out rows from any `--dataset`, rendered by the model's chat template;
4. the quantizer writes into a hidden folder (`swift_core.atomic.atomic_dir`) that becomes the
   output only when everything below succeeded, so a failed export leaves nothing that looks
   complete and does not block a rerun;
5. verification: the artifact is reloaded and measured against the source (sizes, perplexity on
   held-out rows, a greedy generation from each), written with the method, scheme, bits, group
   size, ignored modules, calibration hash and library versions into `quant_manifest.json`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from swift_core.errors import SwiftError

MANIFEST = "quant_manifest.json"
# A perplexity rise above this factor is reported as a warning the user cannot miss.
PPL_WARN_FACTOR = 1.5


def export_quantizer(manager: Any, name: str | None) -> Any:
    """The descriptor of an export-time quantizer, or a user error listing the ones installed."""
    exporters = sorted(d.name for d in manager.registry("quantizers") if d.export_time)
    if not name:
        raise SwiftError(
            f"pass --quant_method METHOD (installed export methods: {', '.join(exporters) or 'none'})"
        )
    descriptor = manager.get("quantizers", name)
    if not descriptor.export_time:
        raise SwiftError(
            f"quantizer {descriptor.name!r} quantizes only while a model loads for training (QLoRA); "
            f"export methods installed: {', '.join(exporters) or 'none'}"
        )
    return descriptor


def _default_output(args: Any) -> Path:
    source = Path(args.adapters or args.model or "model").expanduser()
    return source.with_name(f"{source.name.rstrip('/') or 'model'}-{args.quant_method}")


def check_quantize_arguments(args: Any, manager: Any) -> tuple[Any, Any, Any, Path]:
    """Everything that can be refused before a model loads: (descriptor, quantizer, options, output)."""

    descriptor = export_quantizer(manager, args.quant_method)
    if not (args.adapters or args.model):
        raise SwiftError("pass --model MODEL (a folder) or --adapters CHECKPOINT (written by swift sft/rlhf)")
    if args.adapters:
        from swift_core.models.checkpoint import require_complete

        require_complete(args.adapters)
    else:
        from swift_core.models.resolve import resolve_model

        # Before the quantizer loads (torch, llm-compressor: seconds), so a typo costs one second.
        resolve_model(args.model, getattr(args, "model_type", None), manager)
    quantizer = descriptor.load()()
    quantizer.check(args)
    if quantizer.calibration == "required" and not args.dataset:
        raise SwiftError(
            f"--quant_method {descriptor.name} calibrates on data: pass --dataset (any file or dataset the "
            "training commands read; it is rendered by the model's chat template)"
        )
    for name in ("quant_n_samples", "quant_seqlen"):
        if getattr(args, name) < 1:
            raise SwiftError(f"--{name} must be positive, got {getattr(args, name)}")
    if args.quant_eval_samples < 0:
        raise SwiftError(f"--quant_eval_samples must be 0 (skip) or more, got {args.quant_eval_samples}")
    out = Path(args.output_dir).expanduser() if args.output_dir else _default_output(args)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SwiftError(f"--output_dir {out} already exists and is not empty")
    options = descriptor.options_from(args)
    return descriptor, quantizer, options, out


def _source(args: Any, work: Path, manager: Any) -> tuple[str, dict[str, Any]]:
    """The full-precision folder to quantize, and what the manifest says about where it came from."""
    from swift_core.models.checkpoint import Checkpoint
    from swift_core.models.heads import CAUSAL_LM

    if args.adapters:
        checkpoint = Checkpoint.read(args.adapters)
        CAUSAL_LM.refuse_other(checkpoint.head, str(checkpoint.path))
        info = {
            "checkpoint": str(checkpoint.path),
            "template": checkpoint.template,
            "family": checkpoint.family,
        }
        if not checkpoint.has_adapter:
            return str(checkpoint.path), info
        from swift_core.export.merge import merge_adapter

        merged = merge_adapter(
            str(checkpoint.path), str(work / "merged"), args.model, args.torch_dtype, manager, announce=False
        )
        return str(merged), {
            **info,
            "merged_adapter": True,
            "base_model": args.model or checkpoint.base_model,
        }
    folder = Path(args.model).expanduser()
    if not folder.is_dir():
        raise SwiftError(
            f"--model {args.model}: quantized export needs the model as a local folder; "
            f"download it first with: swift download --model {args.model}"
        )
    return str(folder), {"model": str(folder)}


def _verify(quantizer: Any, prepared: Any, source: str, written: Path, result: Any, rows: Any) -> Any:
    from swift_core.datasets.encode import encode_prompt
    from swift_core.export.verify import Verification, agreement, greedy_ids, perplexity, weight_bytes
    from swift_core.models.loader import load_weights

    check = Verification(
        size_before=weight_bytes(Path(source)), size_after=weight_bytes(written, result.weight_files)
    )
    if not rows.evaluation and rows.prompt is None:
        return check
    original = load_weights(prepared, "float32", with_adapter=False).eval()
    exported = quantizer.load_exported(written, result).eval()
    if rows.evaluation:
        check.ppl_before = perplexity(original, rows.evaluation)
        check.ppl_after = perplexity(exported, rows.evaluation)
        check.eval_rows = len(rows.evaluation)
    if rows.prompt is not None:
        prompt = encode_prompt(prepared.template, prepared.tokenizer, rows.prompt)
        eos = [i for i in (prepared.tokenizer.eos_token_id,) if i is not None]
        before = greedy_ids(original, prompt, 16, eos)
        after = greedy_ids(exported, prompt, 16, eos)
        check.sample_before = prepared.tokenizer.decode(before)
        check.sample_after = prepared.tokenizer.decode(after)
        check.same_tokens = agreement(before, after)
    return check


def _checkpoint_args(out: Path, prepared: Any, info: dict[str, Any], descriptor: Any) -> dict[str, Any]:
    """args.json of a Hugging Face output, so `swift infer --model OUT` serves it with its template."""
    return {
        "model_dir": str(out),
        "saves_adapter": False,
        "tuner_type": "full",
        "head": "causal_lm",
        "family": prepared.family.name,
        "template": prepared.template.name,
        "quant_method": descriptor.name,
        "quantized_from": info,
    }


def run_quantize(args: Any, manager: Any = None) -> Path:
    from swift_core.atomic import atomic_dir, write_json_atomic
    from swift_core.export.calibration import export_rows
    from swift_core.models.checkpoint import ARGS_FILE
    from swift_core.models.loader import prepare_model
    from swift_core.plugins import get_plugin_manager
    from swift_core.quantizers.base import ExportJob, library_versions
    from swift_core.runtimes.selection import select_runtime
    from swift_core.train.outputs import mark_complete

    manager = manager or get_plugin_manager()
    t_start = time.perf_counter()
    descriptor, quantizer, options, out = check_quantize_arguments(args, manager)
    runtime = select_runtime(args.device, manager)
    runtime.configure()

    def log(message: str) -> None:
        click.echo(f"[{descriptor.name}] {message}", err=True)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-work-", dir=out.parent) as work:
        source, info = _source(args, Path(work), manager)
        prepared = prepare_model(
            source,
            model_type=args.model_type or info.get("family"),
            template=args.template or info.get("template"),
            trust_remote_code=bool(getattr(args, "trust_remote_code", False)),
            manager=manager,
        )
        calibrates = quantizer.calibration != "none"
        rows = export_rows(
            list(args.dataset),
            prepared.template,
            prepared.tokenizer,
            n_samples=args.quant_n_samples if calibrates else 0,
            n_eval=args.quant_eval_samples,
            seqlen=args.quant_seqlen,
            seed=args.seed,
            manager=manager,
        )
        if args.dataset:
            used = f"{len(rows.calibration)} calibration rows, " if calibrates else "no calibration needed, "
            log(
                f"{used}{len(rows.evaluation)} rows to measure perplexity on "
                f"(template {prepared.template.name}, up to {args.quant_seqlen} tokens)"
            )
        with atomic_dir(out) as tmp:
            job = ExportJob(
                model_dir=Path(source),
                output_dir=tmp,
                bits=args.quant_bits,
                options=options,
                calibration=rows.calibration,
                torch_dtype=args.torch_dtype,
                runtime=runtime,
                family=prepared.family,
                log=log,
            )
            t_quant = time.perf_counter()
            result = quantizer.export(job)
            quant_seconds = time.perf_counter() - t_quant
            log("verifying: reloading the output and measuring it against the source")
            check = _verify(quantizer, prepared, source, tmp, result, rows)
            manifest = {
                "method": descriptor.name,
                "plugin": descriptor.plugin,
                "distribution": descriptor.distribution,
                **asdict(result),
                "options": asdict(options) if options is not None else {},
                "source": info,
                "calibration": {
                    "datasets": list(args.dataset),
                    "rows": len(rows.calibration),
                    "seqlen": args.quant_seqlen,
                    "sha256": rows.fingerprint() if rows.calibration else None,
                    "evaluation_held_out": rows.held_out,
                },
                "verification": check.as_dict(),
                "seconds": round(quant_seconds, 2),
                "library_versions": {
                    **library_versions(("swift-core", "torch", "transformers")),
                    **result.library_versions,
                },
            }
            write_json_atomic(tmp / MANIFEST, manifest)
            if (tmp / "config.json").is_file():
                write_json_atomic(tmp / ARGS_FILE, _checkpoint_args(out, prepared, info, descriptor))
            mark_complete(tmp, {"quantized_with": descriptor.name})
    manager.hook.after_export(output_dir=str(out), args=args)
    for line in check.lines():
        click.echo(line, err=True)
    if check.ppl_before and check.ppl_after and check.ppl_after > PPL_WARN_FACTOR * check.ppl_before:
        click.echo(
            f"WARNING: perplexity rose {check.ppl_after / check.ppl_before:.2f}x after {descriptor.name} "
            f"({result.scheme}): check the output before serving it (more calibration rows, another scheme)",
            err=True,
        )
    click.echo(
        f"{descriptor.name} ({result.scheme}) written to {out} in {time.perf_counter() - t_start:.1f}s; "
        f"loads in {', '.join(result.loads_in) or 'its own reader'}; manifest {MANIFEST}"
    )
    return out
