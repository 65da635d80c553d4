"""GPU smoke check of quantized export: run on a machine with an NVIDIA GPU (swift-cuda,
swift-llmcompressor and, for the serving step, vLLM installed).

    python bench/gpu/quantize_smoke.py [WORK_DIR]

For AWQ, GPTQ W4A16 and FP8 dynamic: `swift quantize --device cuda` on a tiny Qwen2 built here,
the manifest's verification printed (perplexity before/after), then, if vLLM imports, the output
served by vLLM for one greedy completion: what the CPU tests cannot show (llm-compressor on an
accelerator, compressed-tensors kernels in vLLM).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="swift-quant-smoke-"))
from swift_core.demo.tasks import make_split  # noqa: E402
from swift_core.models.tiny import build_tiny_model  # noqa: E402

model = build_tiny_model(work / "model", size="small", model_type="qwen2", template="qwen2_5")
rows, _ = make_split(96, 3, seed=1)
data = work / "calib.jsonl"
data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
for method, extra in (
    ("awq", ["--quant_group_size", "64"]),
    ("gptq", ["--quant_group_size", "64"]),
    ("fp8", []),
):
    out = work / method
    cmd = [
        sys.executable,
        "-m",
        "swift_core",
        "quantize",
        "--model",
        str(model),
        "--method",
        method,
        "--dataset",
        str(data),
        "--output_dir",
        str(out),
        "--device",
        "cuda",
        *extra,
    ]
    subprocess.run(cmd, check=True)
    print(method, json.loads((out / "quant_manifest.json").read_text())["verification"])
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        print("vllm not installed: serving step skipped")
        continue
    llm = LLM(model=str(out), max_model_len=512, gpu_memory_utilization=0.3, enforce_eager=True)
    text = llm.generate(["Hello"], SamplingParams(max_tokens=8, temperature=0))[0].outputs[0].text
    print(method, "served by vLLM:", repr(text))
    del llm
