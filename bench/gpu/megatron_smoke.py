"""GPU smoke test of plugins/swift-megatron: the real Megatron-Bridge, which the CPU tests fake.

Run on a CUDA machine, in an environment with Python >= 3.12 and `pip install -e . -e
'plugins/swift-megatron[megatron]'` (Megatron-Bridge pins its own transformers: keep it apart
from the main venv). A tiny Qwen2 (built on the spot, no hub) is trained by
`swift sft --nproc_per_node N --tensor_model_parallel_size T --pipeline_model_parallel_size P`
with LoRA and then fully; each run must end with a complete Swift checkpoint that plain
transformers/peft load (the LoRA adapter changes the logits, the full model's logits are
finite). Prints Megatron-Bridge's version and each run's last line.

    python bench/gpu/megatron_smoke.py [--nproc N] [--tp 2] [--pp 1]    # N >= 2 GPUs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path


def _logits(model_dir: Path, adapter: Path | None = None):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    ids = torch.arange(3, 27).reshape(2, 12)
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--nproc", type=int, default=torch.cuda.device_count())
    parser.add_argument("--tp", type=int, default=2)
    parser.add_argument("--pp", type=int, default=1)
    opts = parser.parse_args()
    assert torch.cuda.device_count() >= 2, "needs 2 GPUs or more (a Swift strategy shards over processes)"
    print("megatron-bridge", metadata.version("megatron-bridge"), "on", torch.cuda.device_count(), "GPU(s)")
    from swift_core.demo.tasks import make_split
    from swift_core.models.tiny import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="gpu-megatron-"))
    model = build_tiny_model(work / "model", model_type="qwen2", template="qwen2_5")
    rows, _ = make_split(64, 3, seed=1)
    data = work / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
    base = _logits(model)
    failed = False
    for name, extra in [("lora", ["--learning_rate", "1e-3"]), ("full", ["--tuner_type", "full"])]:
        out = work / name
        cmd = [sys.executable, "-m", "swift_core", "sft", "--model", str(model), "--dataset", str(data),
               "--output_dir", str(out), "--max_steps", "6", "--save_steps", "6", "--max_length", "256",
               "--torch_dtype", "bfloat16", "--nproc_per_node", str(opts.nproc),
               "--tensor_model_parallel_size", str(opts.tp), "--pipeline_model_parallel_size", str(opts.pp),
               *extra]  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True)
        ckpt = next(out.glob("v*/checkpoint-6"), None)
        ok = r.returncode == 0 and ckpt is not None and (ckpt / "swift_checkpoint.json").is_file()
        if ok and name == "lora":
            ok = not torch.allclose(_logits(model, ckpt), base, atol=1e-4)  # the adapter did something
        elif ok:
            ok = bool(torch.isfinite(_logits(ckpt)).all())
        print(f"megatron {name} TP{opts.tp} PP{opts.pp}: {'ok' if ok else 'FAILED'}",
              (r.stdout.strip().splitlines() or [""])[-1])  # fmt: skip
        if not ok:
            failed = True
            print(r.stderr[-3000:])
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
