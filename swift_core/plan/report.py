"""`swift plan`: read the config, size every strategy, print the table and the advice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from swift_core.errors import SwiftError
from swift_core.plan.advice import HEADROOM, advise, fits
from swift_core.plan.arguments import PlanArguments, parse_devices
from swift_core.plan.memory import DTYPE_BYTES, STRATEGIES, GiB, Workload, estimate
from swift_core.plan.shape import load_config, model_shape


def _config_folder(model: str) -> str:
    """A local folder as given; a hub id from the local hub cache (never the network)."""
    if Path(model).is_dir():
        return model
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id: reported below
        cached = None
    if isinstance(cached, str):
        return str(Path(cached).parent)
    raise SwiftError(
        f"--model {model}: no local folder or downloaded copy; `swift download --model {model}` first "
        "(the plan reads only config.json)"
    )


def run_plan(args: PlanArguments) -> dict[str, Any]:
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        raise SwiftError(f"--strategies {' '.join(unknown)}: unknown; use {', '.join(STRATEGIES)}")
    if args.torch_dtype not in DTYPE_BYTES:
        raise SwiftError(f"--torch_dtype {args.torch_dtype}: use {', '.join(DTYPE_BYTES)}")
    if args.quant_bits not in (None, 4, 8):
        raise SwiftError(f"--quant_bits {args.quant_bits}: 4 or 8")
    count, capacity = parse_devices(args.devices)
    shape = model_shape(load_config(_config_folder(args.model)))
    work = Workload(
        tuner="full" if args.tuner == "full" else "lora",
        lora_rank=args.lora_rank,
        lora_dropout=args.lora_dropout,
        target_modules=tuple(args.target_modules),
        quant_bits=args.quant_bits,
        max_length=args.max_length,
        batch=args.batch,
        gradient_checkpointing=args.gradient_checkpointing,
        chunked_loss=args.chunked_loss,
        dtype=args.torch_dtype,
        devices=count,
    )
    estimates = [estimate(shape, work, STRATEGIES[s]) for s in args.strategies]
    advice = advise(shape, work, capacity, list(args.strategies))
    report = {
        "model": args.model,
        "params": shape.total_params,
        "trainable_params": estimates[0].trainable_params if estimates else 0,
        "devices": count,
        "device_bytes": capacity,
        "usable_fraction": HEADROOM,
        "workload": work.__dict__,
        "strategies": [
            {"strategy": e.strategy, **e.parts(), "total": e.total, "cpu_offloaded": e.cpu_offloaded,
             "fits": fits(e, capacity)}
            for e in estimates
        ],
        "advice": None if advice is None else {"change": advice.change, "strategy": advice.strategy,
                                               "total": advice.estimate.total},
    }  # fmt: skip
    if args.json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(_table(report, shape.total_params))
    return report


def _gib(value: float) -> str:
    return f"{value / GiB:.2f}"


def _table(report: dict[str, Any], params: int) -> str:
    w = report["workload"]
    lines = [
        f"{report['model']}: {params / 1e6:,.1f}M parameters, {report['trainable_params'] / 1e6:,.2f}M trainable "
        f"({w['tuner']}{', ' + str(w['quant_bits']) + '-bit base' if w['quant_bits'] else ''}), {w['dtype']}, "
        f"batch {w['batch']} x {w['max_length']} tokens per device, gradient checkpointing "
        f"{'on' if w['gradient_checkpointing'] else 'off'}; {report['devices']} device(s) of "
        f"{_gib(report['device_bytes'])} GiB ({int(HEADROOM * 100)}% usable)",
        "",
        "GiB per device   weights  trainable  grads  optimizer  activations  logits   total  CPU RAM  fits",
    ]
    for s in report["strategies"]:
        lines.append(
            f"{s['strategy']:<16} {_gib(s['weights']):>8} {_gib(s['trainable']):>10} {_gib(s['gradients']):>6} "
            f"{_gib(s['optimizer']):>10} {_gib(s['activations']):>12} {_gib(s['logits']):>7} "
            f"{_gib(s['total']):>7} {_gib(s['cpu_offloaded']):>8}  {'yes' if s['fits'] else 'no'}"
        )
    advice = report["advice"]
    lines.append("")
    if advice is None:
        lines.append("Nothing tried fits: more or larger devices, or a smaller model.")
    elif not advice["change"]:
        lines.append(f"Fits as asked with {advice['strategy']} ({_gib(advice['total'])} GiB per device).")
    else:
        lines.append(
            f"Cheapest change that fits: {advice['change']}, with {advice['strategy']} "
            f"({_gib(advice['total'])} GiB per device)."
        )
    return "\n".join(lines)
