"""The MPS runtime against a fake of `torch.backends.mps` and `torch.mps` (no Mac here).

The fake replaces the real functions the runtime calls: `torch.backends.mps.is_available`,
`is_built`, `is_macos_or_newer(major, minor)` and `torch.mps.current_allocated_memory`,
`driver_allocated_memory`, `recommended_max_memory`, `empty_cache`. The refusals are checked
through the pipelines' own argument checks (`swift sft`'s and `swift infer`'s), which ask the
runtime and never compare device names.
"""

import pytest
import torch

from swift_core.errors import SwiftError
from swift_core.runtimes.selection import select_runtime
from swift_core.runtimes.support import Workload
from swift_core.testing.managers import plugin_manager, plugin_source

GIB = 2**30
MPS = plugin_source("mps", "swift_mps.plugin", "swift-mps")


def _train_args(tmp_path, manager, **values):
    """`swift sft`'s arguments for a model folder and a dataset file that exist (the argument checks
    look at both before any weights load; nothing here loads them)."""
    import json

    from swift_core.config.options import build_arguments
    from swift_core.config.train_args import TrainArguments

    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    config = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}
    (model / "config.json").write_text(json.dumps(config))
    data = tmp_path / "train.jsonl"
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    data.write_text(json.dumps(row) + "\n")
    return build_arguments(
        TrainArguments,
        manager,
        model=str(model),
        dataset=[str(data)],
        output_dir=str(tmp_path / "out"),
        **values,
    )


@pytest.fixture
def mac(monkeypatch):
    calls = []

    def install(macos=(14, 5), available=True):
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: available)
        monkeypatch.setattr(torch.backends.mps, "is_built", lambda: True)
        monkeypatch.setattr(
            torch.backends.mps, "is_macos_or_newer", lambda major, minor: macos >= (major, minor)
        )
        monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 1 * GIB)
        monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 2 * GIB)
        monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 21 * GIB)
        monkeypatch.setattr(torch.mps, "empty_cache", lambda: calls.append("empty_cache"))
        monkeypatch.setattr("sys.platform", "darwin")
        return calls

    return install


def test_auto_takes_mps_on_a_mac(mac):
    mac()
    runtime = select_runtime("auto", plugin_manager(MPS))
    assert runtime.name == "mps" and runtime.device_string(0) == "mps:0" and runtime.device_count() == 1
    assert runtime.default_dtype() == "float32"
    assert runtime.supported_dtypes() == ["float32", "float16", "bfloat16"]
    assert runtime.visible_devices_env == "" and runtime.visible_devices() is None


def test_off_a_mac_mps_says_why_and_auto_falls_back(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr("sys.platform", "linux")
    manager = plugin_manager(MPS)
    assert select_runtime("auto", manager).name == "cpu"
    with pytest.raises(SwiftError, match="MPS is Apple's Metal backend for macOS; this machine runs linux"):
        select_runtime("mps", manager)


def test_bf16_on_an_older_macos_is_refused_by_sft_before_the_model_loads(mac, tmp_path):
    from swift_core.train.pipeline import check_capabilities

    mac(macos=(13, 6))
    manager = plugin_manager(MPS)
    args = _train_args(tmp_path, manager, device="mps", torch_dtype="bfloat16")
    with pytest.raises(SwiftError, match=r"--torch_dtype bfloat16: MPS computes bf16 only on macOS 14"):
        check_capabilities(args, manager)
    fp16 = _train_args(tmp_path, manager, device="mps", torch_dtype="float16")
    assert check_capabilities(fp16, manager).dtype_name == "float16"


def test_the_inference_loader_gives_the_same_reason(mac):
    from swift_core.models.loader import check_dtype

    mac(macos=(13, 6))
    runtime = select_runtime("mps", plugin_manager(MPS))
    with pytest.raises(SwiftError, match="MPS computes bf16 only on macOS 14"):
        check_dtype("bfloat16", runtime)


def test_an_engine_without_a_metal_platform_is_refused_by_build_engine(mac, tmp_path):
    """`swift infer`/`swift deploy` build their engine through `build_engine`: vLLM on MPS is refused
    there, before the engine plugin is imported."""
    from swift_core.config.options import build_arguments
    from swift_core.infer.arguments import InferArguments, build_engine
    from swift_core.testing.engines import installed

    if not installed("swift-vllm"):
        pytest.skip("swift-vllm is not installed")
    mac()
    manager = plugin_manager(MPS, plugin_source("vllm", "swift_vllm.plugin", "swift-vllm"))
    args = build_arguments(InferArguments, manager, model=str(tmp_path), engine="vllm")
    with pytest.raises(SwiftError, match="--engine vllm: vLLM has no Metal"):
        build_engine(args, manager)


def test_many_processes_on_mps_are_refused(mac, monkeypatch, tmp_path):
    from swift_core.train.pipeline import check_capabilities

    mac()
    monkeypatch.setenv("WORLD_SIZE", "2")
    manager = plugin_manager(MPS)
    args = _train_args(tmp_path, manager, device="mps")
    # "2 processes: ...", or "strategy ddp: ..." where a strategy plugin names the launch's strategy
    with pytest.raises(SwiftError, match=r"(2 processes|strategy \w+): MPS is one GPU per machine"):
        check_capabilities(args, manager)
    with pytest.raises(SwiftError, match="strategy fsdp: MPS is one GPU per machine"):
        select_runtime("mps", manager).check(Workload(strategy="fsdp"))


def test_memory_and_cache(mac):
    calls = mac()
    runtime = select_runtime("mps", plugin_manager(MPS))
    assert runtime.memory_stats() == {"allocated": 1 * GIB, "reserved": 2 * GIB, "total": 21 * GIB}
    runtime.empty_cache()
    assert calls == ["empty_cache"]
    support = runtime.support()
    assert not support.flash_attention.supported and support.fused_optimizers.supported
    assert runtime.trainer_arguments("float16") == {"bf16": False, "fp16": True}
