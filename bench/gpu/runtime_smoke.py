"""GPU smoke check of a hardware runtime: run on a CUDA or ROCm machine (swift-cuda or swift-rocm
installed), where the CPU tests only have fakes of torch.cuda / HIP.

    python bench/gpu/runtime_smoke.py [--device auto|cuda|rocm] [--steps 5] [WORK_DIR]

1. The probe: `select_runtime`, then everything `swift env` shows for it (devices, dtypes, visible
   devices variable, what works on it, memory).
2. The declaration against the device: the default dtype really computes there, and flash
   attention is declared only if the GPU's capability / architecture says so.
3. A few LoRA steps of `swift sft` on a tiny Qwen2 on the device (the pipeline's own argument
   checks, the runtime's trainer settings), then the loss and memory stats before and after
   `empty_cache`. Exits non-zero on any failure; `--device cpu` runs it here as a dry run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("work", nargs="?")
    opts = parser.parse_args()
    work = Path(opts.work or tempfile.mkdtemp(prefix="swift-runtime-smoke-"))

    import torch

    from swift_core.config.options import build_arguments
    from swift_core.config.train_args import TrainArguments
    from swift_core.demo.tasks import make_split
    from swift_core.models.tiny import build_tiny_model
    from swift_core.runtimes.selection import select_runtime
    from swift_core.runtimes.support import Workload
    from swift_core.train.pipeline import run_train

    runtime = select_runtime(opts.device)
    print("runtime:", json.dumps(runtime.describe(), indent=2))
    if opts.device == "auto" and runtime.name == "cpu":
        print("no accelerator runtime is usable here (see above): pass --device cpu for a dry run")
        return 1

    dtype = runtime.default_dtype()
    x = torch.randn(512, 512, device=runtime.device(0), dtype=getattr(torch, dtype))
    print(f"{dtype} matmul on {runtime.device_string(0)}:", float((x @ x).float().abs().mean()))
    support = runtime.support()
    print("flash attention:", support.flash_attention.describe())
    if support.flash_attention.supported:
        runtime.check(Workload(flash_attention=True, dtype=dtype))

    model = build_tiny_model(work / "model", size="tiny", model_type="qwen2", template="qwen2_5")
    rows, _ = make_split(64, 0, seed=1)
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
    args = build_arguments(
        TrainArguments,
        model=str(model),
        dataset=[str(data)],
        device=runtime.name,
        max_steps=opts.steps,
        save_steps=opts.steps,
        logging_steps=1,
        output_dir=str(work / "out"),
        per_device_train_batch_size=4,
    )
    t0 = time.perf_counter()
    result = run_train(args, "sft")
    print(f"{opts.steps} LoRA steps in {time.perf_counter() - t0:.1f}s, final loss {result.final_loss}")
    print("trainer settings from the runtime:", runtime.trainer_arguments(dtype))
    print("memory after training:", runtime.memory_stats(0))
    runtime.empty_cache()
    print("memory after empty_cache:", runtime.memory_stats(0))
    assert result.global_step == opts.steps, result.global_step
    assert result.final_loss is not None and result.final_loss == result.final_loss  # not NaN
    print("runtime smoke OK:", runtime.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
