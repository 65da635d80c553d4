"""Distributed strategies on 2 CPU processes against one process, on the same rows per step.

One process with batch 2B (two cores, two threads) against `--nproc_per_node 2` with batch B per
process (one thread each) under DDP, DeepSpeed ZeRO-2 and ZeRO-3, FSDP2: wall time of the training
loop, train tokens/s, start-up (process start to first step, torchrun included), and the peak
RSS of rank 0 as the summary reports it. Same tiny Qwen2 (LoRA r=8, all linear), same rows.

    .venv/bin/python bench/distributed.py [--steps 30] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

RUNS = [
    ("one process, 1 thread", [], "1", 2),
    ("one process, 2 threads", [], "2", 2),
    ("DDP, 2 processes", ["--nproc_per_node", "2"], "1", 1),
    ("ZeRO-2, 2 processes", ["--nproc_per_node", "2", "--deepspeed", "zero2"], "1", 1),
    ("ZeRO-3, 2 processes", ["--nproc_per_node", "2", "--deepspeed", "zero3"], "1", 1),
    ("FSDP2, 2 processes", ["--nproc_per_node", "2", "--fsdp", "full_shard"], "1", 1),
]
DONE = re.compile(
    r"done: (\d+) steps in ([\d.]+)s \(start-up ([\d.]+)s.*?\), ([\d,]+) train tokens/s.*?peak RSS ([\d,]+) MB"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4, help="rows per process per step (one process: x2)")
    opts = parser.parse_args()
    from swift_core.demo.tasks import make_split
    from swift_core.models.tiny import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="bench-dist-"))
    model = build_tiny_model(work / "model", model_type="qwen2", template="qwen2_5")
    rows, _ = make_split(600, 3, seed=1)
    data = work / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
    print(
        "| run | steps | train wall s | start-up s | train tokens/s | peak RSS rank 0 MB |\n|---|---|---|---|---|---|"
    )
    for i, (name, extra, threads, scale) in enumerate(RUNS):
        batch = opts.batch * (2 if scale == 2 else 1)
        cmd = [sys.executable, "-m", "swift_core", "sft", "--model", str(model), "--dataset", str(data),
               "--output_dir", str(work / f"out{i}"), "--max_steps", str(opts.steps), "--logging_steps", "5",
               "--save_steps", str(opts.steps), "--per_device_train_batch_size", str(batch),
               "--master_port", str(29700 + i), *extra]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1"}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        found = DONE.search(out.stdout)
        if out.returncode != 0 or not found:
            print(
                f"| {name} | failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode} |"
            )
            continue
        steps, wall, startup, tps, rss = found.groups()
        print(f"| {name} | {steps} | {wall} | {startup} | {tps} | {rss} |")


if __name__ == "__main__":
    main()
