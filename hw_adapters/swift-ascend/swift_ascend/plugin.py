"""Hooks of swift-ascend. Light on purpose: torch and torch_npu are imported only when the runtime
is used (importing torch_npu loads CANN's libraries)."""

from swift_core import hookimpl
from swift_core.descriptors import RuntimeDescriptor


@hookimpl
def register_runtimes(register):
    register(
        RuntimeDescriptor(
            name="npu",
            description="Huawei Ascend NPUs through torch-npu and CANN; hccl for distributed runs",
            factory="swift_ascend.runtime:AscendRuntime",
            requires=("torch",),
            aliases=("ascend",),
            priority=100,
        )
    )
