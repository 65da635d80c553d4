"""Quantized export: every method of `swift quantize` on one ~50M model, and plain llm-compressor.

Same model (Qwen2 architecture, the `medium` tiny-model size, ~50M parameters with a 2k-word
vocabulary, random weights), same calibration rows (the demo's chat tasks, rendered by the model's
chat template), each run in a fresh process. For every method: wall time of the command, peak RSS,
weight size before/after and the held-out perplexity before/after that Swift's verification
measures (`quant_manifest.json`). Then the alternative a user would write by hand, llm-compressor's
`oneshot` GPTQ W4A16 on the same rows, to show what Swift's checks, merge and verification cost on
top of the library call.

    .venv/bin/python bench/quantize.py [--size medium] [--samples 64] [--methods gptq awq ...]

The model's weights are random, so its perplexity is near the vocabulary size; what the table
compares is each method's change of it. ms-swift 4.6 is not run: its AWQ, GPTQ and FP8 exports
fail on a CPU (issue 12) and it has no GGUF export.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# label -> swift quantize arguments
METHODS: dict[str, list[str]] = {
    "bnb-nf4": ["--method", "bnb", "--quant_bits", "4"],
    "bnb-int8": ["--method", "bnb", "--quant_bits", "8"],
    "gptq-w4a16": ["--method", "gptq", "--quant_bits", "4", "--quant_group_size", "128"],
    "gptq-w8a16": ["--method", "gptq", "--quant_bits", "8", "--quant_group_size", "128"],
    "awq-w4a16": ["--method", "awq", "--quant_bits", "4", "--quant_group_size", "128"],
    "w8a8-int8": ["--method", "w8a8", "--quant_bits", "8"],
    "fp8-dynamic": ["--method", "fp8"],
    "gguf-f16": ["--method", "gguf", "--gguf_type", "f16"],
    "gguf-q8_0": ["--method", "gguf", "--gguf_type", "q8_0"],
    "gguf-q4_1": ["--method", "gguf", "--gguf_type", "q4_1"],
}

# Runs a command and prints its peak RSS (KiB): a fresh parent per run, so the maximum is that run's.
RSS_WRAPPER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(r.returncode)"
)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), "HF_HUB_OFFLINE": "1"}


def measured(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, *cmd], capture_output=True, text=True, env=_env()
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    rss_kb = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    return wall, rss_kb / 1024, proc


def swift_quantize(model: Path, data: Path, out: Path, args: list[str], samples: int) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "swift_core",
        "quantize",
        "--model",
        str(model),
        "--dataset",
        str(data),
        "--output_dir",
        str(out),
        "--quant_n_samples",
        str(samples),
        "--quant_eval_samples",
        "16",
        "--quant_seqlen",
        "256",
        *args,
    ]
    wall, rss, _ = measured(cmd)
    manifest = json.loads((out / "quant_manifest.json").read_text())
    check = manifest["verification"]
    return {
        "wall_s": wall,
        "quantize_s": manifest["seconds"],
        "peak_rss_mb": rss,
        "size_mb": check["size_after"] / 2**20,
        "size_before_mb": check["size_before"] / 2**20,
        "ppl_before": check["ppl_before"],
        "ppl_after": check["ppl_after"],
        "same_tokens": check["same_tokens"],
    }


def plain_llmcompressor(model: Path, data: Path, out: Path, samples: int) -> dict[str, float]:
    wall, rss, _ = measured(
        [
            sys.executable,
            str(HERE / "plain_llmcompressor_gptq.py"),
            str(model),
            str(data),
            str(out),
            str(samples),
        ]
    )
    size = sum(p.stat().st_size for p in out.glob("*.safetensors")) / 2**20
    return {"wall_s": wall, "peak_rss_mb": rss, "size_mb": size}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="medium")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    opts = parser.parse_args()

    from swift_core.demo.tasks import make_split
    from swift_core.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_model(root / "model", size=opts.size, model_type="qwen2", template="qwen2_5")
        rows, _ = make_split(opts.samples + 32, 3, seed=1)
        data = root / "calib.jsonl"
        data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
        results = {}
        for label in opts.methods:
            print(f"... {label}", file=sys.stderr, flush=True)
            results[label] = swift_quantize(model, data, root / label, METHODS[label], opts.samples)
        print("... plain llm-compressor oneshot GPTQ W4A16", file=sys.stderr, flush=True)
        plain = plain_llmcompressor(model, data, root / "plain-gptq", opts.samples)

    before = next(iter(results.values()))["size_before_mb"] if results else 0.0
    print(
        f"\nquantized export of a {opts.size} Qwen2 ({before:.1f} MB fp32), {opts.samples} calibration rows, "
        f"OMP_NUM_THREADS={_env()['OMP_NUM_THREADS']}\n"
    )
    print("| run | wall s | quantize s | peak RSS MB | size MB | ppl before -> after | delta | greedy same |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        delta = (r["ppl_after"] / r["ppl_before"] - 1) * 100
        print(
            f"| swift quantize {label} | {r['wall_s']:.1f} | {r['quantize_s']:.1f} | {r['peak_rss_mb']:,.0f} | "
            f"{r['size_mb']:.1f} | {r['ppl_before']:.1f} -> {r['ppl_after']:.1f} | {delta:+.2f}% | "
            f"{r['same_tokens'] * 100:.0f}% |"
        )
    print(
        f"| plain llm-compressor oneshot GPTQ W4A16 (no checks, no verification) | {plain['wall_s']:.1f} | | "
        f"{plain['peak_rss_mb']:,.0f} | {plain['size_mb']:.1f} | | | |"
    )


if __name__ == "__main__":
    main()
