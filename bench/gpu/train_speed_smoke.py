"""GPU smoke test of issue 20's training paths: packed rows and the chunked loss on CUDA.

On a lent GPU: a ~0.5B-parameter Qwen2 (random weights, hidden 896, 24 layers, the realistic
lognormal rows of bench/realistic_data.py) trained with LoRA by `swift sft` in bf16 under the
default (length-grouped), `--padding_free true` and `--packing true`, and with `--chunked_loss
false`; each run's tokens/s and peak `torch.cuda.max_memory_allocated` (from the summary's runtime
stats where printed, else the RSS line) are printed. With flash-attn installed the runtime names
its varlen kernel for packed rows; without it Swift's per-row SDPA runs. Then one step over the
same 16 rows padded and packed: the two losses must agree within 1e-2 in bf16.

    python bench/gpu/train_speed_smoke.py [--steps 20] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CONFIG_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
}


def sft(model: Path, rows: Path, out: Path, *extra: str) -> str:
    cmd = [sys.executable, "-m", "swift_core", "sft", "--model", str(model), "--dataset", str(rows),
           "--output_dir", str(out), "--torch_dtype", "bfloat16", "--save_steps", "100000",
           "--logging_steps", "1", "--max_length", "1024", *extra]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(extra)} failed:\n{r.stderr[-3000:]}")
    return r.stdout


def first_loss(out: Path) -> float:
    log = next(out.glob("v*/logging.jsonl"))
    return next(e["loss"] for e in map(json.loads, log.read_text().splitlines()) if "loss" in e)


def main() -> None:
    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--work", type=Path, default=None)
    opts = p.parse_args()
    assert torch.cuda.is_available(), "needs a GPU"
    import realistic_data

    from swift_core.models import tiny

    work = opts.work or Path(tempfile.mkdtemp(prefix="swift-speed-"))
    tiny.SIZES["gpu05b"] = CONFIG_05B
    model = work / "model"
    if not (model / "config.json").exists():
        tiny.build_tiny_model(model, "qwen2", size="gpu05b", vocab_size=32000)
    rows = realistic_data.write_rows(work / "rows.jsonl", model)
    steps = ("--max_steps", str(opts.steps), "--per_device_train_batch_size", "8")
    for name, flags in {
        "default": (),
        "padding_free": ("--padding_free", "true"),
        "packing": ("--packing", "true"),
        "full_logits": ("--chunked_loss", "false"),
    }.items():
        text = sft(model, rows, work / name, *steps, *flags)
        done = next((line for line in text.splitlines() if line.startswith("done:")), text[-300:])
        tps = re.search(r"([\d,]+) train tokens/s", done)
        print(f"{name:>13}: {tps.group(1) if tps else '?'} tokens/s | {done}")
    small = realistic_data.write_rows(work / "rows16.jsonl", model, n=16)
    one = ("--max_steps", "1", "--per_device_train_batch_size", "16", "--lora_dropout", "0")
    sft(model, small, work / "one_padded", *one, "--group_by_length", "false")
    sft(model, small, work / "one_packed", *one, "--packing", "true")
    a, b = first_loss(work / "one_padded"), first_loss(work / "one_packed")
    print(f"one step over 16 rows: padded {a:.5f}, packed {b:.5f}")
    assert abs(a - b) < 1e-2, (a, b)
    print("ok")


if __name__ == "__main__":
    main()
