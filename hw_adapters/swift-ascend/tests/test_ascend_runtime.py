"""The Ascend NPU runtime against a fake of torch_npu (no NPU, no CANN, no torch-npu here).

The fake mirrors what `import torch_npu` really provides: a module `torch_npu` with `__version__`
(torch-npu X.Y.Z[.postN] for torch X.Y.Z) that registers `torch.npu`, whose functions the runtime
calls are those of torch_npu's `torch.npu` (`is_available`, `device_count`, `is_bf16_supported`,
`get_device_name`, `memory_allocated`, `memory_reserved`, `max_memory_allocated`, `mem_get_info`,
`empty_cache`, `set_device`). A missing torch_npu and a failing import (CANN's libraries not
loaded) are simulated too. These tests run without torch-npu and without installing swift-ascend
(conftest.py puts its package on sys.path).
"""

import sys
import types
from pathlib import Path

import pytest
import torch

from swift_core.errors import SwiftError
from swift_core.runtimes.selection import refuse_unsupported, select_runtime
from swift_core.runtimes.support import Workload
from swift_core.testing.managers import plugin_manager, plugin_source

GIB = 2**30
ASCEND = plugin_source("ascend", "swift_ascend.plugin", "swift-ascend")


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


def _torch_release() -> str:
    return torch.__version__.split("+")[0]


@pytest.fixture
def npu(monkeypatch):
    """Install a fake torch_npu; returns the calls made to its torch.npu."""
    calls = []

    def install(count=8, bf16=True, available=True, version=None, chip="Ascend910B3"):
        module = types.ModuleType("torch_npu")
        module.__version__ = version or f"{_torch_release()}.post1"
        api = types.SimpleNamespace(
            is_available=lambda: available,
            device_count=lambda: count,
            is_bf16_supported=lambda: bf16,
            get_device_name=lambda index=0: chip,
            memory_allocated=lambda index=0: 2 * GIB,
            memory_reserved=lambda index=0: 3 * GIB,
            max_memory_allocated=lambda index=0: 4 * GIB,
            mem_get_info=lambda index=0: (50 * GIB, 64 * GIB),
            empty_cache=lambda: calls.append("empty_cache"),
            set_device=lambda index: calls.append(("set_device", index)),
        )
        monkeypatch.setitem(sys.modules, "torch_npu", module)
        monkeypatch.setattr(torch, "npu", api, raising=False)
        return calls

    return install


def _no_torch_npu(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch_npu", raising=False)
    monkeypatch.delattr(torch, "npu", raising=False)
    real_import = __import__

    def fake_import(name, *args, **kwargs):
        if name == "torch_npu":
            raise ModuleNotFoundError("No module named 'torch_npu'", name="torch_npu")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", fake_import)


def test_auto_prefers_the_npu_and_names_its_devices_and_backend(npu):
    npu()
    runtime = select_runtime("auto", plugin_manager(ASCEND))
    assert runtime.name == "npu" and runtime.device_string(3) == "npu:3"
    assert runtime.dist_backend == "hccl" and runtime.visible_devices_env == "ASCEND_RT_VISIBLE_DEVICES"
    assert runtime.device_count() == 8 and runtime.default_dtype() == "bfloat16"
    assert select_runtime("ascend", plugin_manager(ASCEND)).name == "npu"


def test_without_torch_npu_auto_falls_back_to_cpu_and_npu_says_what_to_install(monkeypatch):
    _no_torch_npu(monkeypatch)
    manager = plugin_manager(ASCEND)
    assert select_runtime("auto", manager).name == "cpu"
    with pytest.raises(SwiftError, match="torch_npu is not installed: .*hw_adapters/swift-ascend/README.md"):
        select_runtime("npu", manager)


def test_a_torch_npu_that_cannot_load_cann_points_at_set_env(monkeypatch):
    _no_torch_npu(monkeypatch)
    real_import = __import__

    def failing(name, *args, **kwargs):
        if name == "torch_npu":
            raise ImportError("libhccl.so: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", failing)
    with pytest.raises(SwiftError, match=r"libhccl\.so.*ascend-toolkit/set_env\.sh"):
        select_runtime("npu", plugin_manager(ASCEND))


def test_a_torch_npu_built_for_another_torch_is_refused(npu):
    npu(version="2.5.1.post1")
    with pytest.raises(
        SwiftError, match=r"torch-npu 2\.5\.1\.post1 is built for torch 2\.5\.1, but this torch is"
    ):
        select_runtime("npu", plugin_manager(ASCEND))


def test_qlora_on_npu_is_refused_when_sft_checks_its_arguments(npu, tmp_path):
    """The real `swift sft` check (train.pipeline.check_capabilities) with swift-bnb's quantizer:
    refused before any model loads, with why and what to do instead."""
    pytest.importorskip("swift_bnb")
    from swift_core.train.pipeline import check_capabilities

    npu()
    manager = plugin_manager(ASCEND, plugin_source("bnb", "swift_bnb.plugin", "swift-bnb"))
    qlora = _train_args(tmp_path, manager, device="npu", quant_method="bnb", quant_bits=4)
    with pytest.raises(
        SwiftError, match=r"--quant_method bnb \(QLoRA.*no Ascend NPU kernels.*LoRA in bfloat16"
    ):
        check_capabilities(qlora, manager)
    lora = _train_args(tmp_path, manager, device="npu")
    caps = check_capabilities(lora, manager)
    assert caps.runtime.name == "npu" and caps.dtype_name == "bfloat16"


def test_bf16_refused_on_an_npu_without_it(npu):
    npu(bf16=False, chip="Ascend910A")
    runtime = select_runtime("npu", plugin_manager(ASCEND))
    assert runtime.default_dtype() == "float16"
    with pytest.raises(
        SwiftError, match=r"--torch_dtype bfloat16: this NPU \(Ascend910A\) does not compute bf16"
    ):
        runtime.check(Workload(dtype="bfloat16"))


def test_trainer_settings_come_from_the_runtime(npu):
    npu()
    runtime = select_runtime("npu", plugin_manager(ASCEND))
    assert runtime.trainer_arguments("bfloat16") == {
        "bf16": True,
        "fp16": False,
        "optim": "adamw_torch",
        "ddp_find_unused_parameters": False,
    }


def test_vllm_needs_vllm_ascend(npu, monkeypatch):
    import importlib.util

    npu()
    manager = plugin_manager(ASCEND)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "vllm_ascend" else real_find_spec(name, *a),
    )
    with pytest.raises(SwiftError, match="--engine vllm: vLLM runs on Ascend only through the vllm-ascend"):
        refuse_unsupported("npu:1", Workload(engine="vllm"), manager)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "vllm_ascend" else real_find_spec(name, *a),
    )
    refuse_unsupported("npu:1", Workload(engine="vllm"), manager)


def test_memory_cache_and_device_choice_go_through_torch_npu(npu, monkeypatch):
    calls = npu()
    runtime = select_runtime("npu", plugin_manager(ASCEND))
    assert runtime.memory_stats(0) == {
        "allocated": 2 * GIB,
        "reserved": 3 * GIB,
        "peak_allocated": 4 * GIB,
        "free": 50 * GIB,
        "total": 64 * GIB,
    }
    runtime.empty_cache()
    monkeypatch.setenv("LOCAL_RANK", "5")
    runtime.configure()
    assert calls == ["empty_cache", ("set_device", 5)]


def test_swift_env_shows_why_the_npu_is_unusable(monkeypatch):
    from swift_core.cli.env_cmd import collect_runtimes, runtime_lines

    _no_torch_npu(monkeypatch)
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "0,1,2,3")
    runtimes = collect_runtimes(plugin_manager(ASCEND))
    npu_entry = next(r for r in runtimes if r["name"] == "npu")
    assert npu_entry["available"] is False and npu_entry["distribution"] == "swift-ascend"
    assert npu_entry["visible_devices"] == {"ASCEND_RT_VISIBLE_DEVICES": "0,1,2,3"}
    text = "\n".join(runtime_lines(runtimes))
    assert "npu     unavailable: torch_npu is not installed" in text


def test_the_plugin_module_registers_without_importing_torch_npu():
    import subprocess

    source = str(Path(__file__).resolve().parent.parent)
    code = (
        f"import sys; sys.path.insert(0, {source!r})\n"
        "from swift_core.testing.managers import plugin_manager, plugin_source\n"
        "m = plugin_manager(plugin_source('ascend', 'swift_ascend.plugin'))\n"
        "assert 'npu' in m.registry('runtimes')\n"
        "assert 'torch_npu' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
