"""`swift sft|pt --megatron`: Swift's side of a Megatron run (data, run folder, the Swift checkpoint).

Swift reads and checks the data and decides the run folder as for any run (the main process
decides, every rank gets the answer), writes the rows as chat JSON lines Megatron-Bridge reads,
then hands the run to `swift_megatron.bridge`. The exported Hugging Face folder becomes
`checkpoint-N` of the run folder, with args.json and the completion marker, so `swift infer`,
`swift export` and `--adapters` take it like any other checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from swift_core.distributed.ranks import echo_main, is_main_process
from swift_megatron.bridge import LoraSpec, MegatronPlan, megatron_targets
from swift_megatron.strategy import check_world

DEFAULT_SEQ_LENGTH = 2048


def plan_from_args(
    args: Any, mode: str, ctx: Any, model_dir: str, data_file: Path, run_dir: Path
) -> MegatronPlan:
    """Swift's flags in Megatron-Bridge's terms: batch per GPU x DP x accumulation = global batch."""
    tp, pp, dp = check_world(ctx.options, ctx.world_size)
    steps = int(args.max_steps) if int(args.max_steps) > 0 else 0
    if steps <= 0:
        from swift_core.errors import SwiftError

        raise SwiftError("--megatron needs --max_steps N (Megatron-Bridge counts iterations, not epochs)")
    lora = None
    if ctx.saves_adapter:
        lora = LoraSpec(
            rank=int(getattr(args, "lora_rank", 8)),
            alpha=int(getattr(args, "lora_alpha", 32)),
            dropout=float(getattr(args, "lora_dropout", 0.0)),
            target_modules=megatron_targets(getattr(args, "target_modules", ["all-linear"])),
        )
    micro = int(args.per_device_train_batch_size)
    warmup = int(args.warmup_steps) or int(round(float(args.warmup_ratio) * steps))
    return MegatronPlan(
        model_dir=model_dir,
        data_file=str(data_file),
        checkpoint_dir=str(run_dir / "megatron"),
        export_dir=str(run_dir / f"checkpoint-{steps}"),
        tensor_parallel=tp,
        pipeline_parallel=pp,
        seq_length=int(args.max_length or DEFAULT_SEQ_LENGTH),
        micro_batch_size=micro,
        global_batch_size=micro * dp * int(args.gradient_accumulation_steps),
        train_iters=steps,
        learning_rate=float(args.learning_rate or (1e-4 if lora else 1e-5)),
        warmup_iters=warmup,
        weight_decay=float(args.weight_decay),
        clip_grad=float(args.max_grad_norm),
        save_interval=int(args.save_steps),
        log_interval=int(args.logging_steps),
        seed=int(args.seed),
        loss_mode="full" if mode == "pt" else "assistant",
        lora=lora,
        trust_remote_code=bool(getattr(args, "trust_remote_code", False)),
        bf16=(ctx.dtype_name or "bfloat16") != "float32",
    )


def write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    """Chat rows as JSON lines ({"messages": [...]}, tools kept): what ChatSFTPreprocessingConfig reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            out = {"messages": row["messages"]}
            if row.get("tools"):
                out["tools"] = row["tools"]
            f.write(json.dumps(out, ensure_ascii=False) + "\n")
    return path


def run_megatron(args: Any, mode: str, ctx: Any, manager: Any) -> Any:
    from swift_core.atomic import write_json_atomic
    from swift_core.datasets.loader import load_rows
    from swift_core.models.checkpoint import ARGS_FILE
    from swift_core.train.outputs import mark_complete
    from swift_core.train.pipeline import TrainResult, prepare_run_dir, setup_model_family
    from swift_megatron import bridge

    start = time.perf_counter()
    setup = setup_model_family(args, manager, default_template="raw" if mode == "pt" else None)
    loaded = load_rows(args.dataset, skip_bad_rows=args.skip_bad_rows, seed=args.seed, manager=manager)
    if loaded.bad_rows:
        echo_main(loaded.bad_rows_summary(), err=True)
    run_dir, _ = prepare_run_dir(args)
    data_file = run_dir / "megatron_data" / "train.jsonl"
    plan = plan_from_args(args, mode, ctx, str(setup.resolved.model), data_file, run_dir)
    if is_main_process():
        write_rows(loaded.rows, data_file)
    echo_main(
        f"megatron: TP {plan.tensor_parallel} x PP {plan.pipeline_parallel}, global batch {plan.global_batch_size}, "
        f"{plan.train_iters} iterations, {'LoRA' if plan.lora else 'full'}; Megatron checkpoints in {plan.checkpoint_dir}",
        err=True,
    )
    the_bridge, provider = bridge.convert(plan)
    bridge.train(plan, bridge.config(plan, provider))
    last = None
    if is_main_process():
        last = bridge.export(plan, the_bridge)
        write_json_atomic(
            last / ARGS_FILE,
            {
                **_plain(args),
                "mode": mode,
                "model_dir": plan.model_dir,
                "saves_adapter": plan.lora is not None,
                "strategy": "megatron",
            },
        )
        mark_complete(last, {"step": plan.train_iters})
    wall = time.perf_counter() - start
    summary = f"done: {plan.train_iters} steps with Megatron in {wall:.1f}s, checkpoint {last or run_dir}"
    echo_main(summary)
    return TrainResult(run_dir, last, plan.train_iters, None, 0.0, wall, 0.0, summary)


def _plain(args: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(args) if dataclasses.is_dataclass(args) else dict(vars(args))
