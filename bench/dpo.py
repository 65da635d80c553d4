"""DPO with LoRA: `swift rlhf` against TRL's DPOTrainer, and the memory of the reference.

Same small model (Qwen2 architecture, ~7M parameters), same 600 preference pairs, same LoRA,
steps and batch, each run in a fresh process. Then `swift rlhf` twice more: the reference as the
policy with its adapter disabled (Swift's default with LoRA) against a separately loaded frozen
reference model (`--ref_model`), to show what the default saves.

    .venv/bin/python bench/dpo.py [--steps 40] [--batch 8] [--size small]
    .venv/bin/python bench/dpo.py --size medium --steps 10 --only reference   # the memory gap

`--only reference` runs just the two reference variants: on the 7M model the frozen copy is ~28 MB
and its cost disappears in the noise; the ~50M `medium` model shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), "HF_HUB_OFFLINE": "1"}


def swift(model: Path, data: Path, out: Path, steps: int, batch: int, *extra: str) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "swift_core",
        "rlhf",
        "--rlhf_type",
        "dpo",
        "--model",
        str(model),
        "--dataset",
        str(data),
        "--max_steps",
        str(steps),
        "--per_device_train_batch_size",
        str(batch),
        "--learning_rate",
        "2e-3",
        "--lora_rank",
        "16",
        "--lora_alpha",
        "32",
        "--max_length",
        "128",
        "--output_dir",
        str(out),
        "--save_steps",
        "100000",
        "--logging_steps",
        "10",
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    m = re.search(r"done: \d+ steps in ([\d.]+)s .*?final loss ([\d.]+), peak RSS ([\d,]+) MB", proc.stdout)
    if not m:
        raise SystemExit(proc.stdout[-2000:])
    return {
        "wall_s": wall,
        "train_s": float(m.group(1)),
        "peak_rss_mb": float(m.group(3).replace(",", "")),
        "final_loss": float(m.group(2)),
    }


def trl(model: Path, data: Path, steps: int, batch: int) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / "trl_dpo.py"), str(model), str(data), str(steps), str(batch)],
        capture_output=True,
        text=True,
        env=_env(),
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "train_s": r["train_s"],
        "peak_rss_mb": r["peak_rss_mb"],
        "final_loss": r["final_loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", default="small")
    parser.add_argument(
        "--only", choices=("all", "reference"), default="all", help="reference: adapter disabled vs copy"
    )
    args = parser.parse_args()
    from swift_core.demo.tasks import preference_split
    from swift_core.models.tiny import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="swift-dpo-bench-"))
    os.environ["SWIFT_CACHE"] = str(work / "cache")
    model = build_tiny_model(work / "model", "qwen2_5", size=args.size)
    pairs, _ = preference_split(900, 3)
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in pairs[:600]))

    runs = []
    if args.only == "all":
        runs.append(("TRL DPOTrainer + peft (by hand)", trl(model, data, args.steps, args.batch)))
    runs += [
        ("swift rlhf (reference: adapter disabled)", swift(model, data, work / "a", args.steps, args.batch)),
        (
            "swift rlhf --ref_model (a frozen copy)",
            swift(model, data, work / "b", args.steps, args.batch, "--ref_model", str(model)),
        ),
    ]
    if args.only == "all":
        runs.append(
            (
                "swift rlhf --precompute_ref_log_probs",
                swift(model, data, work / "c", args.steps, args.batch, "--precompute_ref_log_probs", "true"),
            )
        )
    print(
        f"DPO + LoRA (r=16, all linear), {args.size} Qwen2 model, {args.steps} steps x batch {args.batch}\n"
    )
    print("| run | wall s | train s | pairs/s | peak RSS MB | final loss |\n|---|---|---|---|---|---|")
    for label, r in runs:
        print(
            f"| {label} | {r['wall_s']:.1f} | {r['train_s']:.1f} | {args.steps * args.batch / r['train_s']:.1f} | "
            f"{r['peak_rss_mb']:,.0f} | {r['final_loss']:.3f} |"
        )


if __name__ == "__main__":
    main()
