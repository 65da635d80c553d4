"""The CUDA runtime against a faked `torch.cuda` (no GPU here): the fake mirrors the real
functions the runtime calls (`is_available`, `device_count`, `is_bf16_supported`). The real
thing is checked by bench/gpu/cuda_runtime_smoke.py on a GPU machine."""

import pytest
import torch

from swift_core.errors import SwiftError
from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy
from swift_core.runtimes.selection import select_runtime


def _manager():
    return PluginManager(
        Policy(),
        [
            PluginSource(
                "runtime-cpu", "swift_core.builtin.runtime_cpu", "swift-core", "0.1.0", builtin=True
            ),
            PluginSource("cuda", "swift_cuda.plugin", "swift-cuda", "0.1.0"),
        ],
    )


def test_auto_prefers_cuda_when_a_gpu_is_visible(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    runtime = select_runtime("auto", _manager())
    assert runtime.name == "cuda"
    assert runtime.device_count() == 2
    assert runtime.default_dtype() == "bfloat16"
    assert runtime.dist_backend == "nccl"


def test_fp16_default_without_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert select_runtime("gpu", _manager()).default_dtype() == "float16"


def test_auto_falls_back_to_cpu_and_explicit_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_runtime("auto", _manager()).name == "cpu"
    with pytest.raises(SwiftError, match="--device cuda: the cuda runtime is installed but not usable"):
        select_runtime("cuda", _manager())


GIB = 2**30


def _gpu(monkeypatch, capability=(9, 0), name="NVIDIA H100 80GB HBM3", bf16=True):
    """A CUDA build with one GPU: the extra torch.cuda functions the support declaration and the
    memory stats call (`get_device_capability`, `get_device_name`, the allocator's counters)."""
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: name)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda index=0: 1 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda index=0: 2 * GIB)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda index=0: 3 * GIB)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=0: (70 * GIB, 80 * GIB))


def test_support_declaration_follows_the_compute_capability(monkeypatch):
    from swift_core.runtimes.support import Workload

    _gpu(monkeypatch)
    hopper = select_runtime("cuda", _manager())
    assert hopper.visible_devices_env == "CUDA_VISIBLE_DEVICES" and hopper.device_string(2) == "cuda:2"
    hopper.check(Workload(dtype="bfloat16", quantizer="bnb", flash_attention=True, world_size=8))
    assert hopper.memory_stats() == {
        "allocated": 1 * GIB,
        "reserved": 2 * GIB,
        "peak_allocated": 3 * GIB,
        "free": 70 * GIB,
        "total": 80 * GIB,
    }

    _gpu(monkeypatch, capability=(7, 5), name="Tesla T4", bf16=False)
    turing = select_runtime("cuda", _manager())
    with pytest.raises(SwiftError) as err:
        turing.check(Workload(dtype="bfloat16", flash_attention=True))
    message = str(err.value)
    assert (
        "--torch_dtype bfloat16: bf16 needs compute capability 8.0" in message
        and "Tesla T4 (sm_75)" in message
    )
    assert "flash attention: flash-attn 2 needs Ampere (sm_80) or newer" in message


def test_a_rocm_build_is_left_to_the_rocm_runtime(monkeypatch):
    _gpu(monkeypatch)
    monkeypatch.setattr(torch.version, "hip", "6.4.1")
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(SwiftError, match=r"ROCm build \(HIP 6\.4\.1\): the rocm runtime \(swift-rocm\)"):
        select_runtime("cuda", _manager())


def test_packed_rows_use_flash_attention_varlen_only_where_it_is_installed_and_runs(monkeypatch):
    """Against a faked `torch.cuda` capability and a faked `flash_attn` lookup."""
    import importlib.util

    from swift_cuda.runtime import CudaRuntime

    runtime = CudaRuntime()
    real_find = importlib.util.find_spec
    installed = {"flash_attn": True}

    def find_spec(name, *a, **k):
        if name == "flash_attn":
            return object() if installed["flash_attn"] else None
        return real_find(name, *a, **k)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    assert runtime.packed_attention() == "flash_attention_2"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 5))
    assert runtime.packed_attention() is None  # Turing: Swift's per-row SDPA
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    installed["flash_attn"] = False
    assert runtime.packed_attention() is None
