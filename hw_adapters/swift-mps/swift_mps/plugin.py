"""Hooks of swift-mps. Light on purpose: torch is imported only when the runtime is used."""

from swift_core import hookimpl
from swift_core.descriptors import RuntimeDescriptor


@hookimpl
def register_runtimes(register):
    register(
        RuntimeDescriptor(
            name="mps",
            description="Apple silicon GPUs through torch's MPS backend; one device, no distributed runs",
            factory="swift_mps.runtime:MpsRuntime",
            requires=("torch",),
            aliases=("apple", "metal"),
            # Below the data-centre accelerators, above the CPU.
            priority=50,
        )
    )
