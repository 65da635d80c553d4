"""Two processes on this CPU (gloo), started by `swift sft --nproc_per_node 2`: DDP and FSDP2, two
nodes on loopback, resume after SIGKILL under DDP and FSDP2 (accelerate's FSDP2 engine, which
accelerate itself builds only for accelerators, switched on for the CPU by
swift_core.strategies.fsdp_cpu; bench/gpu/distributed_smoke.py runs it on a GPU). ZeRO-2/3, with
resume, are in plugins/swift-deepspeed/tests.

Each run is compared with one process that sees the same rows per step (batch 2, gradient
accumulation 2; see swift_core.testing.distributed). Tolerances: per-step loss within 1e-4 and
adapter weights within 2e-4 (the reductions sum in another order; measured differences were
below 1e-5 for DDP and ~5e-5 for the sharded strategies); resumed runs within 1e-5 of the
uninterrupted run of the same strategy.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from helpers import install_fixture

from swift_core.testing import distributed as d

pytestmark = pytest.mark.distributed
LOSS_TOL, WEIGHT_TOL = 1e-4, 2e-4


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return d.shared_setup(tmp_path_factory.mktemp("dist"))


def _assert_like_single_process(setup, out, run):
    model, _, root = setup
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(d.run_folders(out)) == 1, d.run_folders(out)  # one run folder, written by rank 0
    assert run.stdout.count("done: 6 steps") == 1  # one summary
    assert d.losses(out) == pytest.approx(d.losses(root / "single"), abs=LOSS_TOL)
    ours, single = d.checkpoint(out, 6), d.checkpoint(root / "single", 6)
    assert d.max_adapter_difference(ours, single) < WEIGHT_TOL
    assert d.adapter(ours) and all(t.numel() > 0 for t in d.adapter(ours).values())  # not empty
    assert torch.allclose(d.peft_logits(model, ours), d.peft_logits(model, single), atol=1e-3)


def test_ddp_two_processes_train_like_one(setup):
    model, data, root = setup
    out = root / "ddp"
    run = d.distributed_sft(model, data, out)
    _assert_like_single_process(setup, out, run)
    assert "launching 2 process(es)" in run.stderr


FSDP_FLAGS = ("--fsdp", "full_shard", "auto_wrap")
FSDP_FILES = ("pytorch_model_fsdp.bin", "optimizer.bin")  # written only by accelerate's FSDP save


def test_fsdp2_two_processes_train_like_one(setup):
    """FSDP2 (full_shard, one unit per decoder layer) on two CPU ranks: same losses and adapter as
    one process, a complete peft adapter gathered to rank 0, saved by the FSDP engine (not DDP)."""
    model, data, root = setup
    out = root / "fsdp"
    run = d.distributed_sft(model, data, out, *FSDP_FLAGS)
    _assert_like_single_process(setup, out, run)
    for name in FSDP_FILES:
        assert (d.checkpoint(out, 6) / name).is_file(), name


def test_fsdp2_resumes_after_sigkill_to_the_uninterrupted_result(setup, tmp_path):
    model, data, root = setup
    site = install_fixture(tmp_path, "swift-killer")
    straight = root / "fsdp"
    if not straight.exists():
        assert d.distributed_sft(model, data, straight, *FSDP_FLAGS).returncode == 0
    out = tmp_path / "killed"
    env = {"PYTHONPATH": str(site), "SWIFT_KILL_AT_STEP": "3"}
    killed = d.distributed_sft(model, data, out, *FSDP_FLAGS, env=env)
    assert killed.returncode != 0
    resumed = d.distributed_sft(model, data, out, *FSDP_FLAGS, "--resume_from_checkpoint", "auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {d.checkpoint(out, 2)}" in resumed.stderr
    assert d.losses(out)[-3:] == pytest.approx(d.losses(straight)[-3:], abs=1e-5)
    assert d.max_adapter_difference(d.checkpoint(out, 6), d.checkpoint(straight, 6)) < 1e-5


def test_two_nodes_on_loopback_equal_one_node_with_two_processes(setup):
    """NNODES=2 and two launches with NODE_RANK 0 and 1, as on two machines."""
    model, data, root = setup
    out, port = root / "nodes", str(d.free_port())
    procs = []
    for node in (0, 1):
        env = {
            **os.environ,
            "NNODES": "2",
            "NODE_RANK": str(node),
            "NPROC_PER_NODE": "1",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        argv = [
            sys.executable,
            "-m",
            "swift_core",
            "sft",
            "--model",
            str(model),
            "--dataset",
            str(data),
            "--output_dir",
            str(out),
            *d.COMMON,
        ]
        procs.append(
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    results = [p.communicate(timeout=900) for p in procs]
    for p, (_stdout, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr[-3000:]
    assert "done: 6 steps" in results[0][0] and "done:" not in results[1][0]  # node 1 prints nothing
    run = subprocess.CompletedProcess([], 0, results[0][0], results[0][1])
    _assert_like_single_process(setup, out, run)


def test_ddp_resumes_after_sigkill_to_the_uninterrupted_result(setup, tmp_path):
    model, data, root = setup
    site = install_fixture(tmp_path, "swift-killer")
    straight = root / "ddp"
    if not straight.exists():
        assert d.distributed_sft(model, data, straight).returncode == 0
    out = tmp_path / "killed"
    killed = d.distributed_sft(model, data, out, env={"PYTHONPATH": str(site), "SWIFT_KILL_AT_STEP": "3"})
    assert killed.returncode != 0
    assert not (d.checkpoint(out, 4) / "swift_checkpoint.json").exists()  # half-written, never taken
    resumed = d.distributed_sft(model, data, out, "--resume_from_checkpoint", "auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {d.checkpoint(out, 2)}" in resumed.stderr
    assert resumed.stderr.count("resuming from") == 1
    assert d.max_adapter_difference(d.checkpoint(out, 6), d.checkpoint(straight, 6)) < 1e-5
