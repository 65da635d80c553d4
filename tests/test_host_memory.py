"""The CPU runtime's host-memory policies (glibc): lean gives freed blocks back to the OS at once,
the training loop's reuse keeps them for the next step, gradient checkpointing stays lean, and a
user's own MALLOC_* settings win. Each case runs in a fresh interpreter: mallopt is process-wide."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")

PROBE = r"""
import os, sys
from swift_core.builtin.runtime_cpu import CpuRuntime
from swift_core.runtimes.host_memory import free_heap_mb

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

runtime = CpuRuntime()
runtime.configure()
for action in sys.argv[1:]:
    if action == "loop":
        runtime.training_loop_starts(memory_first=False)
    elif action == "loop-memory-first":
        runtime.training_loop_starts(memory_first=True)
    elif action == "end":
        runtime.training_loop_ends()
    elif action == "churn":  # one "step": 192 MB of 8 MB activations, pages touched, then freed
        base = rss()
        blocks = [b"\x01" * (8 << 20) for _ in range(24)]
        del blocks
        print("kept", round(rss() - base), "free", round(free_heap_mb()))
    elif action == "rss":
        print("rss", round(rss()))
"""


def probe(*actions: str, env: dict[str, str] | None = None) -> list[tuple[str, int, int]]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    full_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *actions], env=full_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines() if line.startswith(("kept", "rss"))]
    return [(parts[0], int(parts[1]), int(parts[3]) if len(parts) > 3 else 0) for parts in lines]


@linux_only
def test_lean_while_loading_gives_freed_blocks_back():
    [(_, kept, _)] = probe("churn")
    assert kept < 40


@linux_only
def test_training_loop_reuses_freed_pages_and_ends_lean():
    (_, kept, free), (_, after_end, _), (_, again, _) = probe("loop", "churn", "end", "rss", "rss")
    assert kept > 150 and free > 150  # the step's pages stay, held free for the next step
    [(_, lean_rss, _)] = probe("rss")
    assert after_end < lean_rss + 40  # ending the loop handed them back (trimmed)
    assert again == after_end  # and nothing more comes back later: it was all handed back


@linux_only
def test_gradient_checkpointing_runs_stay_lean():
    [(_, kept, _)] = probe("loop-memory-first", "churn")
    assert kept < 40


@linux_only
def test_users_malloc_settings_win():
    # glibc's own variable keeps big blocks on the heap: with it set, Swift's policies stand aside.
    [(_, kept, _)] = probe(
        "churn", env={"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
    )
    assert kept > 150


def test_loop_callback_tells_the_runtime_when_the_loop_starts_and_ends():
    from swift_core.train.runtime_loop import RuntimeLoopCallback

    calls: list[tuple[str, bool | None]] = []
    runtime = SimpleNamespace(
        training_loop_starts=lambda memory_first: calls.append(("starts", memory_first)),
        training_loop_ends=lambda: calls.append(("ends", None)),
    )
    for first in (False, True):
        cb = RuntimeLoopCallback(runtime, memory_first=first)
        cb.on_train_begin(None, None, None)
        cb.on_train_end(None, None, None)
    assert calls == [("starts", False), ("ends", None), ("starts", True), ("ends", None)]


@pytest.mark.parametrize(
    ("flags", "first"),
    [
        ({}, True),  # padded batches: their big tensors are fresh pages either way
        ({"padding_free": True}, False),
        ({"packing": True}, False),
        ({"max_tokens_per_batch": 4096}, False),
        ({"padding_free": True, "gradient_checkpointing": True}, True),
        ({"gradient_checkpointing": True}, True),
    ],
)
def test_memory_first_unless_a_steps_blocks_are_bounded(flags, first):
    from swift_core.train.runtime_loop import memory_first

    args = SimpleNamespace(
        **{
            "packing": False,
            "padding_free": False,
            "max_tokens_per_batch": None,
            "gradient_checkpointing": False,
            **flags,
        }
    )
    assert memory_first(args) is first
