"""The ROCm runtime against a faked HIP build of torch (no AMD GPU here).

The fake sets what a ROCm wheel of torch really has: `torch.version.hip` (a string) with
`torch.version.cuda` None, and HIP devices behind the `torch.cuda` functions the runtime calls
(`is_available`, `device_count`, `is_bf16_supported`, `get_device_properties(i).gcnArchName`,
`get_device_name`, `memory_allocated`, `memory_reserved`, `max_memory_allocated`,
`mem_get_info`, `empty_cache`). The real thing is checked by bench/gpu/runtime_smoke.py on an
AMD GPU machine.
"""

from types import SimpleNamespace

import pytest
import torch

from swift_core.errors import SwiftError
from swift_core.runtimes.selection import refuse_unsupported, select_runtime
from swift_core.runtimes.support import Workload
from swift_core.testing.managers import plugin_manager, plugin_source

GIB = 2**30


def _manager():
    return plugin_manager(
        plugin_source("cuda", "swift_cuda.plugin", "swift-cuda"),
        plugin_source("rocm", "swift_rocm.plugin", "swift-rocm"),
    )


@pytest.fixture
def hip(monkeypatch):
    """A ROCm torch with `count` GPUs of architecture `arch`; returns the calls made to the fake."""
    calls = []

    def install(
        arch="gfx942:sramecc+:xnack-", name="AMD Instinct MI300X", count=8, bf16=True, available=True
    ):
        monkeypatch.setattr(torch.version, "hip", "6.4.43482-0f2d60242")
        monkeypatch.setattr(torch.version, "cuda", None)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
        props = SimpleNamespace(gcnArchName=arch, name=name, total_memory=192 * GIB)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=0: props)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: name)
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda index=0: 3 * GIB)
        monkeypatch.setattr(torch.cuda, "memory_reserved", lambda index=0: 4 * GIB)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda index=0: 5 * GIB)
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=0: (180 * GIB, 192 * GIB))
        monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
        monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.append(("set_device", index)))
        return calls

    return install


def test_auto_takes_rocm_on_a_hip_build_and_cuda_declines_it(hip):
    hip()
    manager = _manager()
    runtime = select_runtime("auto", manager)
    assert runtime.name == "rocm"
    assert runtime.device_type == "cuda" and runtime.device_string(1) == "cuda:1"
    assert runtime.dist_backend == "nccl"  # torch's name for RCCL on ROCm
    assert runtime.visible_devices_env == "HIP_VISIBLE_DEVICES"
    assert runtime.device_count() == 8 and runtime.default_dtype() == "bfloat16"
    assert select_runtime("hip", manager).name == "rocm"
    with pytest.raises(SwiftError, match=r"--device cuda: .*ROCm build \(HIP 6\.4.*swift-rocm"):
        select_runtime("cuda", manager)


def test_rocm_declines_a_cuda_build_and_says_why(hip, monkeypatch):
    hip()
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    manager = _manager()
    assert select_runtime("auto", manager).name == "cuda"
    with pytest.raises(SwiftError, match="a CUDA 12.8 build, not a ROCm one"):
        select_runtime("rocm", manager)


def test_no_visible_gpu_names_the_variable_and_the_device_files(hip):
    hip(available=False)
    with pytest.raises(SwiftError, match="HIP_VISIBLE_DEVICES.*/dev/kfd"):
        select_runtime("rocm", _manager())


def test_flash_attention_only_on_the_architectures_its_kernels_target(hip):
    hip(arch="gfx942:sramecc+:xnack-")
    mi300 = select_runtime("rocm", _manager())
    assert mi300.support().flash_attention.supported
    mi300.check(Workload(flash_attention=True, dtype="bfloat16"))

    hip(arch="gfx1100", name="AMD Radeon RX 7900 XTX")
    radeon = select_runtime("rocm", _manager())
    with pytest.raises(
        SwiftError, match=r"flash attention: .*this GPU is AMD Radeon RX 7900 XTX \(gfx1100\)"
    ):
        radeon.check(Workload(flash_attention=True))


def test_bf16_refused_where_the_gpu_has_none(hip):
    hip(arch="gfx906", name="AMD Instinct MI50", bf16=False)
    runtime = select_runtime("rocm", _manager())
    assert runtime.default_dtype() == "float16"
    with pytest.raises(
        SwiftError, match=r"--torch_dtype bfloat16: this GPU \(AMD Instinct MI50 \(gfx906\)\)"
    ):
        runtime.check(Workload(dtype="bfloat16"))


def test_an_engine_without_rocm_kernels_is_refused_before_it_loads(hip):
    hip()
    manager = _manager()
    with pytest.raises(SwiftError, match="--engine lmdeploy: LMDeploy runs on CUDA GPUs and Ascend NPUs"):
        refuse_unsupported("auto", Workload(engine="lmdeploy"), manager)
    refuse_unsupported(
        "cuda:3", Workload(engine="vllm"), manager
    )  # no runtime named cuda is usable: no refusal
    refuse_unsupported("rocm", Workload(engine="vllm"), manager)


def test_memory_stats_cache_and_device_choice_go_through_torch_cuda(hip, monkeypatch):
    calls = hip()
    runtime = select_runtime("rocm", _manager())
    assert runtime.memory_stats(0) == {
        "allocated": 3 * GIB,
        "reserved": 4 * GIB,
        "peak_allocated": 5 * GIB,
        "free": 180 * GIB,
        "total": 192 * GIB,
    }
    runtime.empty_cache()
    monkeypatch.setenv("LOCAL_RANK", "3")
    runtime.configure()
    assert calls == ["empty_cache", ("set_device", 3)]
    assert runtime.trainer_arguments("bfloat16") == {"bf16": True, "fp16": False}


def test_swift_env_shows_rocm_with_its_support_or_why_not(hip, monkeypatch):
    from swift_core.cli.env_cmd import collect_runtimes, runtime_lines

    hip(arch="gfx1100", name="AMD Radeon RX 7900 XTX")
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "0,1")
    runtimes = {r["name"]: r for r in collect_runtimes(_manager())}
    rocm = runtimes["rocm"]
    assert rocm["available"] and rocm["distribution"] == "swift-rocm"
    assert rocm["visible_devices"] == {"HIP_VISIBLE_DEVICES": "0,1"}
    assert rocm["support"]["flash_attention"].startswith("no (the flash-attention ROCm kernels target")
    assert rocm["memory"]["total"] == 192 * GIB
    assert "ROCm build" in runtimes["cuda"]["why"]
    text = "\n".join(runtime_lines(list(runtimes.values())))
    assert "rocm    available  devices=8" in text and "HIP_VISIBLE_DEVICES=0,1" in text
    assert "refuses engine lmdeploy" in text and "memory: allocated=3.00 GiB" in text
