"""Hooks of swift-cuda. Light on purpose: torch is imported only when the runtime is used."""

from swift_core import hookimpl
from swift_core.descriptors import RuntimeDescriptor


@hookimpl
def register_runtimes(register):
    register(
        RuntimeDescriptor(
            name="cuda",
            description="NVIDIA GPUs through torch.cuda; bf16 on Ampere+, nccl for distributed runs",
            factory="swift_cuda.runtime:CudaRuntime",
            requires=("torch",),
            aliases=("gpu",),
            priority=100,
        )
    )
