"""Training speed and memory: `swift sft` against a plain transformers.Trainer + peft script.

Same small model (Qwen2 architecture, ~7M parameters, random weights), same 2,000 chat rows,
same LoRA (r=16 on all linear layers), same steps and batch, each in a fresh process:
wall time, start-up to the first step, train tokens/s, peak RSS. Then, on a ~50M-parameter
config trained in full, the achieved FLOP/s as a fraction of this CPU's measured fp32 matmul peak.

    .venv/bin/python bench/train.py [--steps 60] [--batch 8]
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
THREADS = os.environ.get("OMP_NUM_THREADS", "2")


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": THREADS,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def run_swift(
    model: Path, data: Path, out: Path, steps: int, batch: int, extra: list[str]
) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "swift_core",
        *extra,
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
        "--max_length",
        "128",
        "--output_dir",
        str(out),
        "--save_steps",
        "100000",
        "--logging_steps",
        "10",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    m = re.search(
        r"done: (\d+) steps in ([\d.]+)s \(start-up ([\d.]+)s\), ([\d,]+) train tokens/s, final loss ([\d.]+), peak RSS ([\d,]+) MB",
        proc.stdout,
    )
    if not m:
        raise SystemExit(f"no summary line in: {proc.stdout[-2000:]}")
    train_s = float(m.group(2))
    return {
        "wall_s": wall,
        "train_s": train_s,
        "startup_s": wall - train_s,
        "tokens_per_s": float(m.group(4).replace(",", "")),
        "peak_rss_mb": float(m.group(6).replace(",", "")),
        "final_loss": float(m.group(5)),
    }


def run_plain(model: Path, data: Path, steps: int, batch: int) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(HERE / "plain_trainer_lora.py"), str(model), str(data), str(steps), str(batch)],
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
        "startup_s": r["startup_s"],
        "tokens_per_s": r["tokens"] / r["train_s"],
        "peak_rss_mb": r["peak_rss_mb"],
        "final_loss": r["final_loss"],
    }


def matmul_peak(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        best = max(best, 10 * 2 * n**3 / (time.perf_counter() - t))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = THREADS

    from swift_core.demo.tasks import make_split
    from swift_core.models.tiny import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="swift-train-bench-"))
    os.environ["SWIFT_CACHE"] = str(work / "cache")
    model = build_tiny_model(work / "small", "qwen2_5", size="small")
    rows, _ = make_split(2000, 3)
    data = work / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))

    lora = ["sft", "--tuner_type", "lora", "--lora_rank", "16", "--lora_alpha", "32"]
    plain = run_plain(model, data, args.steps, args.batch)
    swift = run_swift(model, data, work / "out", args.steps, args.batch, lora)
    swift_packed = run_swift(
        model, data, work / "out2", args.steps, args.batch, [*lora, "--padding_free", "true"]
    )

    print(f"LoRA SFT, ~7M-parameter Qwen2, {args.steps} steps x batch {args.batch}, {THREADS} threads\n")
    print(
        "| run | wall s | start-up s | train s | train tokens/s | peak RSS MB | final loss |\n|---|---|---|---|---|---|---|"
    )
    for label, r in (
        ("transformers.Trainer + peft (by hand)", plain),
        ("swift sft", swift),
        ("swift sft --padding_free", swift_packed),
    ):
        print(
            f"| {label} | {r['wall_s']:.1f} | {r['startup_s']:.1f} | {r['train_s']:.1f} | {r['tokens_per_s']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} | {r['final_loss']:.3f} |"
        )

    medium = build_tiny_model(work / "medium", "qwen2_5", size="medium")
    from transformers import AutoConfig, AutoModelForCausalLM

    n_params = sum(
        p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(medium)).parameters()
    )
    full = run_swift(medium, data, work / "out3", 10, 8, ["sft", "--tuner_type", "full"])
    achieved = 6 * n_params * full["tokens_per_s"]
    peak = matmul_peak(int(THREADS))
    print(
        f"\nFull fine-tuning, {n_params / 1e6:.0f}M parameters: {full['tokens_per_s']:,.0f} tokens/s "
        f"= {achieved / 1e9:.2f} GFLOP/s (6 x params x tokens/s); fp32 matmul peak {peak / 1e9:.1f} GFLOP/s "
        f"-> {achieved / peak:.0%} of peak"
    )


if __name__ == "__main__":
    main()
