import pytest

from swift_core.errors import SwiftError, UnknownNameError
from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy
from swift_core.runtimes.selection import select_runtime

CPU = PluginSource("runtime-cpu", "swift_core.builtin.runtime_cpu", "swift-core", "0.1.0", builtin=True)


def test_auto_and_explicit_cpu():
    manager = PluginManager(Policy(), [CPU])
    for device in ("auto", "cpu"):
        runtime = select_runtime(device, manager)
        assert (
            runtime.name == "cpu" and runtime.default_dtype() == "float32" and runtime.dist_backend == "gloo"
        )
    import torch

    assert runtime.device() == torch.device("cpu")


def test_uninstalled_runtime_names_its_distribution():
    manager = PluginManager(Policy(), [CPU])
    with pytest.raises(UnknownNameError) as err:
        select_runtime("npu", manager)
    assert "unknown runtime 'npu'" in str(err.value) and "swift-ascend" in str(err.value)


def test_no_runtime_at_all_is_a_clear_error():
    manager = PluginManager(Policy(disabled=frozenset({"runtime-cpu"})), [CPU])
    with pytest.raises(SwiftError, match="no runtime is available"):
        select_runtime("auto", manager)


def test_cpu_runtime_shares_cores_among_local_workers(monkeypatch):
    import os

    import torch

    from swift_core.builtin.runtime_cpu import CpuRuntime

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(os.cpu_count() or 1))
        CpuRuntime().configure()
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        CpuRuntime().configure()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
