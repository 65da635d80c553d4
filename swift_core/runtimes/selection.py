"""`--device`: the runtime plugin to use, from the `runtimes` registry.

Apart from the interface (`swift_core.runtimes.base`) because it needs the plugin manager, which
itself loads the built-in CPU runtime: keeping the two in one module made an import cycle.
"""

from __future__ import annotations

from typing import Any

from swift_core.errors import SwiftError
from swift_core.runtimes.base import HardwareRuntime
from swift_core.runtimes.support import Workload


def instantiate(descriptor: Any) -> HardwareRuntime:
    factory = descriptor.load()
    runtime = factory()
    if not isinstance(runtime, HardwareRuntime):
        raise SwiftError(
            f"runtime {descriptor.name!r} from plugin {descriptor.plugin!r} is not a HardwareRuntime"
        )
    return runtime


def select_runtime(device: str = "auto", manager: Any = None) -> HardwareRuntime:
    """The runtime for `--device`: `auto` takes the available one of highest priority."""
    if manager is None:
        from swift_core.plugins import get_plugin_manager

        manager = get_plugin_manager()
    registry = manager.registry("runtimes")
    if device != "auto":
        descriptor = registry.get(device)
        runtime = instantiate(descriptor)
        if not runtime.is_available():
            raise SwiftError(
                f"--device {device}: the {descriptor.name} runtime is installed but not usable here: "
                f"{runtime.unavailable_reason()}. Use --device auto or one of: {', '.join(registry.names())}"
            )
        return runtime
    tried = []
    for descriptor in sorted(registry, key=lambda d: -d.priority):
        runtime = instantiate(descriptor)
        if runtime.is_available():
            return runtime
        tried.append(f"{descriptor.name} ({runtime.unavailable_reason()})")
    raise SwiftError(
        f"--device auto: no runtime is available. Tried: {'; '.join(tried) or 'none registered'}"
    )


def refuse_unsupported(device: str, work: Workload, manager: Any = None) -> None:
    """Refuse what the runtime `device` names (or `auto` picks) declares it cannot do.

    For commands whose capability chooses its own device (an inference engine: `--device cuda:1`,
    or an NPU served by an engine's own backend with no Swift runtime installed): the device
    string's type is looked up, and when no installed, usable runtime matches, the capability is
    left to decide. Training selects its runtime strictly and calls `HardwareRuntime.check`.
    """
    if manager is None:
        from swift_core.plugins import get_plugin_manager

        manager = get_plugin_manager()
    name = (device or "auto").split(":")[0]
    if name != "auto" and name not in manager.registry("runtimes"):
        return
    try:
        runtime = select_runtime(name, manager)
    except SwiftError:
        return
    runtime.check(work)
