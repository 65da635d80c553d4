"""swift-deepspeed: the plugin registers without importing deepspeed, and ZeRO-2/3 over two CPU
processes (gloo) train like one process with the same rows per step; ZeRO-2 resumes after SIGKILL.

Tolerances as in tests/test_distributed_runs.py: per-step loss within 1e-4, adapter within 2e-4
of one process (measured ~5e-5), the resumed run within 1e-5 of the uninterrupted one. The first
run compiles DeepSpeed's shared-memory op (minutes; cached in ~/.cache/torch_extensions). The
SIGKILL comes from the repository's swift-killer fixture plugin (tests/fixtures).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from swift_core.testing import distributed as d

LOSS_TOL, WEIGHT_TOL = 1e-4, 2e-4
SHM_OP = "deepspeed_shm_comm"  # DeepSpeed's CPU shared-memory collective, built on first use


def _build_cache_with_a_stale_lock(root: Path) -> Path:
    """A torch extensions folder holding the shared-memory op (copied from the default cache when
    an earlier run built it there, else built anew) and the lock a killed build leaves."""
    from swift_deepspeed.build_locks import build_roots

    built = next((r / SHM_OP for r in build_roots() if (r / SHM_OP / f"{SHM_OP}.so").is_file()), None)
    if built is not None:
        shutil.copytree(built, root / SHM_OP, ignore=shutil.ignore_patterns("lock"))
    (root / SHM_OP).mkdir(parents=True, exist_ok=True)
    (root / SHM_OP / "lock").touch()
    return root


def test_registers_without_importing_deepspeed_or_torch():
    code = textwrap.dedent(
        """
        import sys
        from swift_core.plugins import PluginManager, PluginSource, builtin_sources
        from swift_core.policy import Policy
        source = PluginSource("swift-deepspeed", "swift_deepspeed.plugin", "swift-deepspeed", "0.1.0")
        m = PluginManager(Policy(), [*builtin_sources(), source])
        d = m.get("strategies", "deepspeed")
        assert d.activated_by == "deepspeed" and d.requires == ("deepspeed",), d
        heavy = [n for n in ("deepspeed", "torch", "swift_deepspeed.strategy") if n in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return d.shared_setup(tmp_path_factory.mktemp("ds"))


@pytest.mark.distributed
@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_zero_two_processes_train_like_one(setup, zero):
    model, data, root = setup
    out = root / zero
    run = d.distributed_sft(model, data, out, "--deepspeed", zero)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(d.run_folders(out)) == 1 and run.stdout.count("done: 6 steps") == 1
    assert d.losses(out) == pytest.approx(d.losses(root / "single"), abs=LOSS_TOL)
    ours, single = d.checkpoint(out, 6), d.checkpoint(root / "single", 6)
    weights = d.adapter(ours)
    assert weights and all(t.numel() > 0 for t in weights.values())  # ZeRO-3 + LoRA: not empty
    assert d.max_adapter_difference(ours, single) < WEIGHT_TOL
    assert torch.allclose(d.peft_logits(model, ours), d.peft_logits(model, single), atol=1e-3)
    assert (ours / "global_step6").is_dir()  # DeepSpeed's own sharded state, for resuming


@pytest.mark.distributed
def test_zero2_resumes_after_sigkill_to_the_uninterrupted_result(setup, tmp_path):
    from helpers import install_fixture

    model, data, root = setup
    straight = root / "zero2"
    if not straight.exists():
        assert d.distributed_sft(model, data, straight, "--deepspeed", "zero2").returncode == 0
    site = install_fixture(tmp_path, "swift-killer")
    out = tmp_path / "killed"
    killed = d.distributed_sft(
        model, data, out, "--deepspeed", "zero2", env={"PYTHONPATH": str(site), "SWIFT_KILL_AT_STEP": "3"}
    )
    assert killed.returncode != 0
    # A kill can also land while DeepSpeed builds or loads its op, leaving torch's build lock: the
    # resumed run starts over such a lock (in a copy of the build cache) and must not wait on it.
    extensions = _build_cache_with_a_stale_lock(tmp_path / "torch_extensions")
    resumed = d.distributed_sft(
        model, data, out, "--deepspeed", "zero2", "--resume_from_checkpoint", "auto",
        env={"TORCH_EXTENSIONS_DIR": str(extensions)}, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (
        f"removed a stale build lock left by an interrupted build ({extensions / SHM_OP / 'lock'})"
        in resumed.stderr
    )
    assert not (extensions / SHM_OP / "lock").exists()
    assert f"resuming from {d.checkpoint(out, 2)}" in resumed.stderr
    assert d.max_adapter_difference(d.checkpoint(out, 6), d.checkpoint(straight, 6)) < 1e-5
