"""Hooks of swift-rocm. Light on purpose: torch is imported only when the runtime is used."""

from swift_core import hookimpl
from swift_core.descriptors import RuntimeDescriptor


@hookimpl
def register_runtimes(register):
    register(
        RuntimeDescriptor(
            name="rocm",
            description="AMD GPUs through a ROCm build of torch (torch.cuda over HIP); rccl for distributed runs",
            factory="swift_rocm.runtime:RocmRuntime",
            requires=("torch",),
            aliases=("hip", "amd"),
            # Above CUDA: a ROCm torch answers torch.cuda too, and only this runtime knows its limits.
            priority=110,
        )
    )
