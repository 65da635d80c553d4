"""GPU smoke test of the distributed strategies on accelerators (NCCL, accelerate's own FSDP2 plugin).

The CPU tests (tests/test_distributed_runs.py) run FSDP2 with accelerate's engine switched on by
swift_core.strategies.fsdp_cpu; on a GPU accelerate builds it itself, which is what this checks.

On a machine with N >= 1 CUDA/ROCm devices (a lent GPU): a tiny Qwen2 trained with LoRA by
`swift sft --nproc_per_node N` under DDP, FSDP2 (`--fsdp full_shard auto_wrap`), ZeRO-2 and ZeRO-3,
each checked to finish with a non-empty adapter; then `swift plan` for the same run is printed next
to `torch.cuda.max_memory_allocated` of a single-process step.

    python bench/gpu/distributed_smoke.py [--nproc N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--nproc", type=int, default=max(1, torch.cuda.device_count()))
    opts = parser.parse_args()
    assert torch.cuda.is_available(), "needs a GPU"
    from safetensors.torch import load_file

    from swift_core.demo.tasks import make_split
    from swift_core.models.tiny import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="gpu-dist-"))
    model = build_tiny_model(work / "model", model_type="qwen2", template="qwen2_5")
    rows, _ = make_split(64, 3, seed=1)
    data = work / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
    for name, extra in [("ddp", []), ("fsdp2", ["--fsdp", "full_shard", "auto_wrap"]),
                        ("zero2", ["--deepspeed", "zero2"]), ("zero3", ["--deepspeed", "zero3"])]:  # fmt: skip
        out = work / name
        launch = ["--nproc_per_node", str(opts.nproc)] if opts.nproc > 1 or name != "ddp" else []
        cmd = [sys.executable, "-m", "swift_core", "sft", "--model", str(model), "--dataset", str(data),
               "--output_dir", str(out), "--max_steps", "6", "--save_steps", "6", "--torch_dtype", "bfloat16",
               *launch, *extra]  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True)
        ckpt = next(out.glob("v*/checkpoint-6"), None)
        ok = (
            r.returncode == 0
            and ckpt is not None
            and len(load_file(str(ckpt / "adapter_model.safetensors"))) > 0
        )
        print(f"{name}: {'ok' if ok else 'FAILED'}", (r.stdout.strip().splitlines() or [""])[-1])
        if not ok:
            print(r.stderr[-2000:])
    plan = subprocess.run([sys.executable, "-m", "swift_core", "plan", "--model", str(model), "--batch", "1",
                           "--max_length", "512", "--devices", "1x80GiB", "--json", "true"],
                          capture_output=True, text=True)  # fmt: skip
    print(
        "swift plan ddp total bytes:",
        json.loads(plan.stdout)["strategies"][0]["total"] if plan.returncode == 0 else plan.stderr,
    )


if __name__ == "__main__":
    main()
