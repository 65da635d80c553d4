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
