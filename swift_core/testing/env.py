"""The environment tests run in: one thread, no hub, no plugin policy leaking in from the shell.

Why these settings: the CPU test machines are small and shared (one OpenMP thread per process keeps
tests from fighting over cores), tests build their models on the spot (a hub request is a bug, so
huggingface_hub and datasets must fail fast instead of waiting on the network), and a developer's
`SWIFT_POLICY` / `SWIFT_LOAD_PLUGINS` / `SWIFT_DISABLE_PLUGINS` would silently change which plugins a
test sees.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping

# Set when absent: a developer may still ask for more threads.
DEFAULT_ENV: dict[str, str] = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
# Always set: a test must never reach a hub.
FORCED_ENV: dict[str, str] = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# The variables that decide which plugins load (swift_core.policy).
POLICY_ENV: tuple[str, ...] = ("SWIFT_POLICY", "SWIFT_LOAD_PLUGINS", "SWIFT_DISABLE_PLUGINS")


def setup_test_environment(environ: MutableMapping[str, str] | None = None) -> None:
    """Apply DEFAULT_ENV (where unset) and FORCED_ENV to `environ` (default: `os.environ`).

    Call it before torch, tokenizers or huggingface_hub are imported (top of a conftest.py): they
    read these variables once, at import.
    """
    env = os.environ if environ is None else environ
    for key, value in DEFAULT_ENV.items():
        env.setdefault(key, value)
    env.update(FORCED_ENV)


def without_policy(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of `environ` (default: `os.environ`) without the plugin-policy variables, for a child
    process that must see every installed plugin."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k not in POLICY_ENV}


@contextlib.contextmanager
def isolated_plugins() -> Iterator[None]:
    """No plugin policy from the environment inside the block, and a fresh process-wide plugin
    manager on entry and exit (so a test's plugins do not leak into the next test).

    In a conftest.py: `@pytest.fixture(autouse=True)` / `def _plugins(): with isolated_plugins(): yield`.
    """
    from swift_core.plugins import reset_plugin_manager

    saved = {k: os.environ.pop(k) for k in POLICY_ENV if k in os.environ}
    reset_plugin_manager()
    try:
        yield
    finally:
        for key in POLICY_ENV:
            os.environ.pop(key, None)
        os.environ.update(saved)
        reset_plugin_manager()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread inside the block, the previous count restored after.

    OMP_NUM_THREADS only counts if it is set before torch is imported; in a test session some
    earlier module may have imported torch already. Imports torch.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
