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


def test_uninstalled_runtime_names_only_distributions_this_repository_builds():
    manager = PluginManager(Policy(), [CPU])
    with pytest.raises(UnknownNameError) as err:
        select_runtime("cuda", manager)
    assert "unknown runtime 'cuda'" in str(err.value) and "'swift-cuda'" in str(err.value)
    assert "hw_adapters/swift-cuda" in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        select_runtime("npu", manager)
    message = str(err.value)
    assert "'swift-ascend'" in message and "hw_adapters/swift-ascend" in message
    assert "Did you mean" not in message  # npu is not a misspelling of cpu
    with pytest.raises(UnknownNameError) as err:
        select_runtime("xpu", manager)
    message = str(err.value)
    assert "No plugin of the Swift repository provides the runtime 'xpu'" in message
    assert "install" not in message and "Did you mean" not in message


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


def test_trainer_precision_comes_from_the_runtime_not_a_device_name():
    """The CPU trains without autocast (weights in the dtype itself); an accelerator by default in
    mixed precision; the training pipeline passes the runtime's answer to TrainingArguments."""
    from swift_core.builtin.runtime_cpu import CpuRuntime
    from swift_core.runtimes.base import HardwareRuntime

    assert CpuRuntime().trainer_arguments("bfloat16") == {"use_cpu": True, "bf16": False, "fp16": False}

    class Accelerator(HardwareRuntime):
        name = device_type = "fake"

        def is_available(self):
            return True

        def device_count(self):
            return 1

        def supported_dtypes(self):
            return ["bfloat16", "float16", "float32"]

    assert Accelerator().trainer_arguments("bfloat16") == {"bf16": True, "fp16": False}
    assert Accelerator().trainer_arguments("float16") == {"bf16": False, "fp16": True}
    assert Accelerator().trainer_arguments("float32") == {"bf16": False, "fp16": False}
