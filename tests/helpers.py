"""Helpers of the core's tests (importable: pytest puts tests/ on sys.path).

What a plugin's tests need too lives in the installed test kit, `swift_core.testing`; this module
keeps what is about this repository (its folders and fixture distributions).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from swift_core.testing.env import POLICY_ENV
from swift_core.testing.install import pip_install_target, run_swift

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

__all__ = [
    "FIXTURES",
    "POLICY_ENV",
    "REPO",
    "adapter_at",
    "assert_same_adapter",
    "checkpoint_at",
    "install_fixture",
    "kill_then_resume",
    "pip_install_target",
    "run_sft",
    "run_swift",
    "write_demo_rows",
]


def install_fixture(tmp_path: Path, name: str) -> Path:
    """One fixture distribution of tests/fixtures installed into tmp_path/site."""
    return pip_install_target(tmp_path / "site", FIXTURES / name)


def write_demo_rows(path: Path, n: int, seed: int, n_test: int = 0) -> Path:
    """`n` rows of the demo's generated tasks (messages only) as JSONL at `path`."""
    from swift_core.demo.tasks import make_split

    rows, _ = make_split(n, n_test, seed=seed)
    path.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
    return path


def run_sft(model: Path, data: Path, out: Path, *extra: str, env: dict | None = None):
    """`swift sft` LoRA at a learning rate a tiny model moves with, every step logged, no dropout."""
    return run_swift(
        "sft", "--model", str(model), "--dataset", str(data), "--output_dir", str(out),
        "--learning_rate", "5e-3", "--logging_steps", "1", "--lora_dropout", "0", *extra, env=env,
    )  # fmt: skip


def checkpoint_at(out: Path, step: int) -> Path:
    """The one `checkpoint-<step>` of the run under `out`."""
    found = list(out.glob(f"v*/checkpoint-{step}"))
    assert len(found) == 1, found
    return found[0]


def adapter_at(out: Path, step: int) -> dict:
    from safetensors.torch import load_file

    return load_file(checkpoint_at(out, step) / "adapter_model.safetensors")


def assert_same_adapter(a: dict, b: dict, atol: float = 1e-6, exact: bool = False) -> None:
    """Same tensor names, and values within `atol` (bitwise with `exact`)."""
    import torch

    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]) if exact else torch.allclose(a[key], b[key], atol=atol), key


def kill_then_resume(
    run: Callable[..., subprocess.CompletedProcess],
    out: Path,
    site: Path,
    kill_at: int,
    after_kill: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess:
    """`run(out, *flags, env=...)` SIGKILLed at step `kill_at` by the swift-killer fixture (installed
    in `site`), `after_kill()` (checks of what the kill left), then run again with
    `--resume_from_checkpoint auto`; returns the resumed run."""
    killed = run(out, env={"PYTHONPATH": str(site), "SWIFT_KILL_AT_STEP": str(kill_at)})
    assert killed.returncode == -9, killed.stderr
    if after_kill is not None:
        after_kill()
    resumed = run(out, "--resume_from_checkpoint", "auto", env={"PYTHONPATH": str(site)})
    assert resumed.returncode == 0, resumed.stderr
    return resumed


def built_kernel(load, what: str):
    """A CPU kernel as this machine builds it (swift_core.native_build). A compiler here and no
    kernel is a failure, not a skip."""
    import pytest

    from swift_core import native_build

    built = load()
    if built is None and native_build.compiler() is None:
        pytest.skip("no C compiler on this machine")
    assert built is not None, f"a C compiler is here, yet the {what} did not build (see its debug log)"
    return built
