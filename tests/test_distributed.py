"""Distributed strategies, fast part: selection, launcher plans, DeepSpeed and FSDP configs.

The 2-process runs (DDP, FSDP2, ZeRO-2, ZeRO-3, two nodes, resume after SIGKILL) are in
tests/test_distributed_runs.py, marked `distributed` (`make test-distributed`, part of `make test`).
"""

from __future__ import annotations

import json
import sys

import pytest

from swift_core.config.options import build_arguments
from swift_core.config.rlhf_args import RLHFArguments
from swift_core.config.train_args import TrainArguments
from swift_core.distributed import launcher
from swift_core.errors import SwiftError
from swift_core.plugins import get_plugin_manager
from swift_core.strategies.base import StrategyContext
from swift_core.strategies.selection import select_strategy


class _Runtime:
    dist_backend = "gloo"


def _args(**values):
    return build_arguments(TrainArguments, model="m", dataset=["d"], **values)


def _ctx(descriptor, args, **kw):
    base = dict(world_size=2, runtime=_Runtime(), dtype_name="float32", saves_adapter=True, quantized=False)
    return StrategyContext(**{**base, **kw}, options=descriptor.options_from(args))


def test_the_strategy_is_the_one_whose_flag_is_given_else_ddp_when_distributed():
    manager = get_plugin_manager()
    assert select_strategy(_args(), manager, world_size=1) is None
    assert select_strategy(_args(), manager, world_size=2).name == "ddp"
    assert select_strategy(_args(deepspeed="zero3"), manager, world_size=2).name == "deepspeed"
    assert select_strategy(_args(fsdp=["full_shard", "auto_wrap"]), manager, world_size=2).name == "fsdp"
    with pytest.raises(SwiftError, match="pick one strategy"):
        select_strategy(_args(deepspeed="zero3", fsdp=["auto_wrap"]), manager, world_size=2)
    assert "deepspeed" in {
        f for f in build_arguments(RLHFArguments, model="m", dataset=["d"]).__dataclass_fields__
    }


def test_the_articles_spelling_deepspeed_zero3_fsdp_auto_wrap_is_a_clear_pick_one(tmp_path):
    from helpers import run_swift

    r = run_swift(
        "sft",
        "--model",
        "qwen2.5-0.5b-instruct",
        "--dataset",
        str(tmp_path / "d.jsonl"),
        "--deepspeed",
        "zero3",
        "--fsdp",
        "auto_wrap",
    )
    assert r.returncode == 2 and "pick one strategy" in r.stderr, r.stderr
    one = run_swift("sft", "--model", str(tmp_path), "--dataset", "x.jsonl", "--deepspeed", "zero2")
    assert one.returncode == 2


def test_a_strategy_without_several_processes_says_how_to_get_them(tiny_qwen, tmp_path):
    from helpers import run_swift
    from webui_helpers import task_file

    data = task_file(tmp_path / "d.jsonl", 8)
    r = run_swift(
        "sft",
        "--model",
        str(tiny_qwen),
        "--dataset",
        str(data),
        "--output_dir",
        str(tmp_path / "o"),
        "--max_steps",
        "1",
        "--deepspeed",
        "zero2",
    )
    assert r.returncode == 2 and "needs several processes" in r.stderr and "--nproc_per_node" in r.stderr
    assert not (tmp_path / "o").exists()


def test_deepspeed_presets_leave_batch_and_precision_to_swift_and_gather_on_save(tmp_path):
    manager = get_plugin_manager()
    descriptor = manager.get("strategies", "deepspeed")
    strategy = descriptor.load()()
    for name, stage, offload in [
        ("zero1", 1, False),
        ("zero2", 2, False),
        ("zero3", 3, False),
        ("zero3_offload", 3, True),
        ("zero2_offload", 2, True),
    ]:
        args = _args(deepspeed=name)
        config = strategy.trainer_arguments(args, _ctx(descriptor, args))["deepspeed"]
        zero = config["zero_optimization"]
        assert zero["stage"] == stage
        assert config["train_micro_batch_size_per_gpu"] == "auto" and config["gradient_clipping"] == "auto"
        assert ("offload_optimizer" in zero) == offload
        assert zero.get("stage3_gather_16bit_weights_on_model_save", False) == (stage == 3)
    own = tmp_path / "ds.json"
    own.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    args = _args(deepspeed=str(own))
    with pytest.raises(SwiftError, match="stage3_gather_16bit_weights_on_model_save"):
        strategy.check(args, _ctx(descriptor, args))  # an adapter saved under it would be empty
    strategy.check(args, _ctx(descriptor, args, saves_adapter=False))
    args = _args(deepspeed="zero3")
    with pytest.raises(SwiftError, match="zero2"):
        strategy.check(args, _ctx(descriptor, args, quantized=True))
    bad = _args(deepspeed=str(tmp_path / "missing.json"))
    with pytest.raises(SwiftError, match="neither a preset"):
        strategy.check(bad, _ctx(descriptor, bad))


def test_fsdp_takes_transformers_words_and_writes_full_state_dicts_by_default():
    descriptor = get_plugin_manager().get("strategies", "fsdp")
    strategy = descriptor.load()()
    args = _args(fsdp=["full_shard auto_wrap"])
    fields = strategy.trainer_arguments(args, _ctx(descriptor, args))
    assert fields["fsdp"] == "full_shard auto_wrap"
    assert (
        fields["fsdp_config"]["fsdp_version"] == 2
        and fields["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"
    )
    args = _args(fsdp=["offload"])
    assert strategy.trainer_arguments(args, _ctx(descriptor, args))["fsdp"] == "full_shard offload auto_wrap"
    for words, message in [(["full_shard", "shard_grad_op"], "give one of"), (["zero3"], "unknown")]:
        args = _args(fsdp=words)
        with pytest.raises(SwiftError, match=message):
            strategy.check(args, _ctx(descriptor, args))


def test_fsdp_offload_on_the_cpu_runtime_is_refused_as_pointless():
    from swift_core.builtin.runtime_cpu import CpuRuntime

    descriptor = get_plugin_manager().get("strategies", "fsdp")
    strategy = descriptor.load()()
    args = _args(fsdp=["full_shard", "offload"])
    with pytest.raises(SwiftError, match="CPU memory already"):
        strategy.check(args, _ctx(descriptor, args, runtime=CpuRuntime()))
    strategy.check(args, _ctx(descriptor, args))  # an accelerator runtime offloads to CPU RAM
    plain = _args(fsdp=["full_shard"])
    strategy.check(plain, _ctx(descriptor, plain, runtime=CpuRuntime()))  # FSDP2 itself runs on the CPU


def test_fsdp_sharded_checkpoints_of_an_adapter_are_refused_they_would_hold_no_peft_folder():
    descriptor = get_plugin_manager().get("strategies", "fsdp")
    strategy = descriptor.load()()
    args = _args(fsdp=["full_shard"], fsdp_state_dict_type="sharded")
    with pytest.raises(SwiftError, match="no adapter folder"):
        strategy.check(args, _ctx(descriptor, args))
    strategy.check(args, _ctx(descriptor, args, saves_adapter=False))  # full fine-tuning may shard


def test_fsdp_on_the_cpu_switches_accelerates_engine_on_only_where_accelerate_left_it_off():
    """A fake Trainer with accelerate's real state objects: only a CPU run that asked for FSDP and
    got MULTI_CPU is switched (on GPUs accelerate keeps its own plugin, untouched)."""
    from types import SimpleNamespace

    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    from swift_core.strategies.fsdp_cpu import enable_fsdp_on_cpu

    fsdp_args = {"fsdp_version": 2, "reshard_after_forward": True}
    saved = dict(PartialState._shared_state)

    def trainer(device, kind, plugin=None, requested=fsdp_args):
        state = SimpleNamespace(distributed_type=kind, fsdp_plugin=plugin)
        accelerator = SimpleNamespace(device=SimpleNamespace(type=device), state=state)
        return SimpleNamespace(args=SimpleNamespace(fsdp_plugin_args=requested), accelerator=accelerator)

    try:
        assert not enable_fsdp_on_cpu(trainer("cpu", DistributedType.MULTI_CPU, requested=None))
        assert not enable_fsdp_on_cpu(trainer("cuda", DistributedType.FSDP, plugin=object()))
        assert not enable_fsdp_on_cpu(trainer("cpu", DistributedType.NO))  # one process: nothing to shard
        cpu = trainer("cpu", DistributedType.MULTI_CPU)
        assert enable_fsdp_on_cpu(cpu)
        assert cpu.accelerator.state.distributed_type == DistributedType.FSDP and cpu.is_fsdp_enabled
        assert cpu.accelerator.state.fsdp_plugin.fsdp_version == 2
        assert PartialState._shared_state["distributed_type"] == DistributedType.FSDP
    finally:
        PartialState._shared_state.clear()
        PartialState._shared_state.update(saved)


def test_launch_plans_from_flags_and_ms_swift_environment(monkeypatch):
    for key in ("LOCAL_RANK", "WORLD_SIZE", *launcher.ENV.values()):
        monkeypatch.delenv(key, raising=False)
    assert launcher.launch_plan(_args()) is None  # one process: just run
    plan = launcher.launch_plan(_args(nproc_per_node=2, master_port=29611))
    assert plan.world_size == 2 and plan.master_addr == "127.0.0.1"
    monkeypatch.setenv("NNODES", "2")
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.5")
    monkeypatch.setenv("NPROC_PER_NODE", "4")
    plan = launcher.launch_plan(_args())
    assert (plan.nproc_per_node, plan.nnodes, plan.node_rank, plan.master_addr) == (4, 2, 1, "10.0.0.5")
    command = launcher.torchrun_command(plan, ["sft", "--model", "m"])
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert (
        "--nnodes=2" in command
        and "--node_rank=1" in command
        and command[-5:] == ["-m", "swift_core", "sft", "--model", "m"]
    )
    assert launcher.launch_plan(_args(node_rank=0, nproc_per_node=1)).node_rank == 0  # a flag wins
    with pytest.raises(SwiftError, match="node_rank must be in 0 .. 1"):
        launcher.launch_plan(_args(node_rank=2))
    monkeypatch.setenv("NPROC_PER_NODE", "two")
    with pytest.raises(SwiftError, match="NPROC_PER_NODE"):
        launcher.launch_plan(_args())
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert launcher.launch_plan(_args(nproc_per_node=2)) is None  # torchrun started us: never again
