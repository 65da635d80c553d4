"""swift-megatron: the plugin registers without megatron, refuses before launch what it cannot do,
and drives Megatron-Bridge with the calls and arguments its API takes.

Megatron-Bridge needs Python >= 3.12 and CUDA, so it cannot be installed here: the contract tests
run the adapter against a FAKE of Megatron-Bridge's API, modules injected into `sys.modules`
under the real names (`megatron.bridge`, `megatron.bridge.training.config`, ...), whose classes
record what they are given. They check what Swift asks of the bridge (the HF folder, TP/PP sizes,
batch sizes, LoRA, the checkpoint and export paths), not that Megatron trains: that is
bench/gpu/megatron_smoke.py, on a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from types import SimpleNamespace

import pytest

from swift_core.config.options import build_arguments
from swift_core.config.train_args import TrainArguments
from swift_core.errors import SwiftError
from swift_core.plugins import get_plugin_manager
from swift_core.strategies.base import StrategyContext
from swift_core.strategies.selection import check_world_size, select_strategy


class Recorder:
    """A fake class of the bridge: remembers its keyword arguments and attributes set on it."""

    calls: list[tuple[str, dict]] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.__dict__.update(kwargs)
        Recorder.calls.append((type(self).__name__, kwargs))


def _fake_bridge(monkeypatch, log: list):
    class AutoBridge:
        @classmethod
        def from_hf_pretrained(cls, path, **kwargs):
            log.append(("from_hf_pretrained", path, kwargs))
            return cls()

        def to_megatron_provider(self, load_weights=True, hf_path=None):
            log.append(("to_megatron_provider", load_weights))
            self.provider = SimpleNamespace(tensor_model_parallel_size=1, pipeline_model_parallel_size=1)
            return self.provider

        def export_adapter_ckpt(self, peft_checkpoint, output_path, **kwargs):
            log.append(("export_adapter_ckpt", peft_checkpoint, output_path))
            Path(output_path).mkdir(parents=True)
            (Path(output_path) / "adapter_config.json").write_text("{}")

        def export_ckpt(self, megatron_path, hf_path, **kwargs):
            log.append(("export_ckpt", megatron_path, hf_path))
            Path(hf_path).mkdir(parents=True)
            (Path(hf_path) / "config.json").write_text("{}")

    classes = {
        "megatron.bridge.data.builders": ("ChatSFTPreprocessingConfig", "DirectHFSFTDatasetConfig", "HFDatasetSourceConfig"),
        "megatron.bridge.peft.lora": ("LoRA",),
        "megatron.bridge.training.config": (
            "CheckpointConfig", "ConfigContainer", "LoggerConfig", "RNGConfig", "TokenizerConfig", "TrainingConfig",
        ),
    }  # fmt: skip
    for name in ("megatron", "megatron.bridge", "megatron.bridge.data", "megatron.bridge.peft",
                 "megatron.bridge.recipes", "megatron.bridge.recipes.utils", "megatron.bridge.training"):  # fmt: skip
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["megatron.bridge"].AutoBridge = AutoBridge
    for module, names in classes.items():
        mod = types.ModuleType(module)
        for n in names:
            setattr(mod, n, type(n, (Recorder,), {}))
        monkeypatch.setitem(sys.modules, module, mod)
    opt = types.ModuleType("megatron.bridge.recipes.utils.optimizer_utils")

    def distributed_fused_adam_with_cosine_annealing(**kwargs):
        log.append(("optimizer", kwargs))
        return SimpleNamespace(kind="optimizer", **kwargs), SimpleNamespace(kind="scheduler")

    opt.distributed_fused_adam_with_cosine_annealing = distributed_fused_adam_with_cosine_annealing
    monkeypatch.setitem(sys.modules, opt.__name__, opt)
    finetune_mod = types.ModuleType("megatron.bridge.training.finetune")
    finetune_mod.finetune = lambda config, forward_step_func: log.append(
        ("finetune", config, forward_step_func)
    )
    step = types.ModuleType("megatron.bridge.training.gpt_step")
    step.forward_step = lambda state, data_iterator, model: None
    monkeypatch.setitem(sys.modules, finetune_mod.__name__, finetune_mod)
    monkeypatch.setitem(sys.modules, step.__name__, step)
    return step.forward_step


def _args(**values):
    return build_arguments(TrainArguments, model="m", dataset=["d"], **values)


def _ctx(args, world_size=4, saves_adapter=True):
    descriptor = get_plugin_manager().get("strategies", "megatron")
    return StrategyContext(
        world_size=world_size, runtime=None, dtype_name="bfloat16", saves_adapter=saves_adapter,
        quantized=False, options=descriptor.options_from(args),
    )  # fmt: skip


def test_registers_without_importing_megatron_or_torch():
    code = textwrap.dedent(
        """
        import sys
        from swift_core.plugins import PluginManager, PluginSource, builtin_sources
        from swift_core.policy import Policy
        source = PluginSource("swift-megatron", "swift_megatron.plugin", "swift-megatron", "0.1.0")
        m = PluginManager(Policy(), [*builtin_sources(), source])
        d = m.get("strategies", "megatron")
        assert d.activating_options() == ("megatron", "tensor_model_parallel_size", "pipeline_model_parallel_size")
        heavy = [n for n in ("megatron", "torch", "swift_megatron.strategy") if n in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_any_of_its_flags_turns_it_on_and_deepspeed_with_it_is_pick_one():
    manager = get_plugin_manager()
    for flags in ({"megatron": True}, {"tensor_model_parallel_size": 2}, {"pipeline_model_parallel_size": 2}):
        assert select_strategy(_args(**flags), manager, world_size=4).name == "megatron", flags
    assert select_strategy(_args(megatron=False), manager, world_size=4).name == "ddp"
    with pytest.raises(SwiftError, match="--fsdp full_shard and --megatron: pick one"):
        select_strategy(_args(megatron=True, fsdp=["full_shard"]), manager, world_size=4)


def test_before_launch_tp_x_pp_must_divide_the_world_size_then_the_missing_pieces_are_named(monkeypatch):
    descriptor = get_plugin_manager().get("strategies", "megatron")
    with pytest.raises(SwiftError, match=r"2 x --pipeline_model_parallel_size 2 = 4 does not divide the 6"):
        check_world_size(descriptor, 6, _args(tensor_model_parallel_size=2, pipeline_model_parallel_size=2))
    with pytest.raises(SwiftError, match="must be 1 or more"):
        check_world_size(descriptor, 4, _args(tensor_model_parallel_size=0, megatron=True))
    from swift_megatron import environment

    monkeypatch.setattr(environment, "missing", lambda: ["Python 3.11.7", "no megatron-bridge"])
    with pytest.raises(
        SwiftError,
        match=r"needs megatron-bridge, Python >= 3.12 and CUDA; this machine has Python 3.11.7, no megatron-bridge",
    ):
        check_world_size(descriptor, 4, _args(tensor_model_parallel_size=2))
    monkeypatch.setattr(environment, "missing", lambda: [])
    check_world_size(descriptor, 4, _args(tensor_model_parallel_size=2, pipeline_model_parallel_size=2))


def test_the_cli_refuses_here_before_any_process_starts(tmp_path):
    """This machine (Python 3.11, CPU torch, no megatron-bridge) gets one line saying so, exit 2."""
    from swift_core.testing.install import run_swift

    if sys.version_info >= (3, 12):
        pytest.skip("the message names Python 3.11's gap")
    run = run_swift("sft", "--model", "m", "--dataset", "d", "--output_dir", str(tmp_path / "o"),
                    "--tensor_model_parallel_size", "2", "--nproc_per_node", "2")  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "needs megatron-bridge, Python >= 3.12 and CUDA; this machine has Python 3.11" in run.stderr
    assert "launching" not in run.stderr and not (tmp_path / "o").exists()


def test_the_adapter_converts_trains_and_exports_through_the_bridges_api(monkeypatch, tmp_path):
    from swift_megatron import bridge
    from swift_megatron.run import plan_from_args

    log: list = []
    Recorder.calls = []
    forward_step = _fake_bridge(monkeypatch, log)
    args = _args(
        tensor_model_parallel_size=2, max_steps=10, per_device_train_batch_size=2, gradient_accumulation_steps=3,
        lora_rank=16, lora_alpha=32, target_modules=["q_proj", "v_proj", "down_proj"], max_length=512, save_steps=5,
    )  # fmt: skip
    plan = plan_from_args(
        args, "sft", _ctx(args, world_size=8), "/models/qwen", tmp_path / "d.jsonl", tmp_path
    )
    assert (plan.tensor_parallel, plan.pipeline_parallel) == (2, 1)
    assert plan.global_batch_size == 2 * 4 * 3  # micro x DP (8 / (2 x 1)) x accumulation

    the_bridge, provider = bridge.convert(plan)
    assert log[0] == ("from_hf_pretrained", "/models/qwen", {"trust_remote_code": False})
    assert log[1] == ("to_megatron_provider", False)  # weights come from pretrained_checkpoint
    assert (provider.tensor_model_parallel_size, provider.pipeline_model_parallel_size) == (2, 1)
    assert provider.seq_length == 512

    container = bridge.config(plan, provider)
    assert container.model is provider
    assert container.train.kwargs == {"train_iters": 10, "global_batch_size": 24, "micro_batch_size": 2}
    assert container.checkpoint.pretrained_checkpoint == "/models/qwen"
    assert container.checkpoint.save == str(tmp_path / "megatron") and container.checkpoint.save_interval == 5
    assert container.tokenizer.kwargs == {
        "tokenizer_type": "HuggingFaceTokenizer",
        "tokenizer_model": "/models/qwen",
    }
    assert container.peft.kwargs == {
        "target_modules": ["linear_qkv", "linear_fc2"], "dim": 16, "alpha": 32, "dropout": 0.05,
    }  # fmt: skip
    source = container.dataset.source
    assert source.kwargs == {
        "path_or_dataset": "json",
        "load_kwargs": {"data_files": str(tmp_path / "d.jsonl")},
        "split": "train",
    }
    assert container.dataset.preprocessing.loss_mode == "assistant" and container.dataset.seq_length == 512
    opt = next(entry[1] for entry in log if entry[0] == "optimizer")
    assert (
        opt["max_lr"] == plan.learning_rate
        and opt["lr_decay_iters"] == 10
        and opt["precision"] == "bf16-mixed"
    )

    bridge.train(plan, container)
    assert log[-1] == ("finetune", container, forward_step)
    out = bridge.export(plan, the_bridge)
    assert log[-1] == ("export_adapter_ckpt", str(tmp_path / "megatron"), str(tmp_path / "checkpoint-10"))
    assert out == tmp_path / "checkpoint-10"

    full = plan_from_args(_args(tuner_type="full", megatron=True, max_steps=3), "pt", _ctx(args, saves_adapter=False),
                          "/models/qwen", tmp_path / "d.jsonl", tmp_path / "full")  # fmt: skip
    assert full.lora is None and full.loss_mode == "full"
    assert bridge.config(full, bridge.convert(full)[1]).peft is None
    bridge.export(full, the_bridge)
    assert log[-1] == (
        "export_ckpt",
        str(tmp_path / "full" / "megatron"),
        str(tmp_path / "full" / "checkpoint-3"),
    )


def test_a_run_hands_swift_rows_to_the_bridge_and_marks_the_export_a_swift_checkpoint(monkeypatch, tmp_path):
    from swift_megatron.run import run_megatron

    from swift_core.testing.datasets import write_chat_dataset
    from swift_core.testing.models import tiny_model

    log: list = []
    _fake_bridge(monkeypatch, log)
    model = tiny_model(tmp_path / "model", "qwen2_5")
    data = write_chat_dataset(tmp_path / "data", n=6).train
    args = _args(megatron=True, max_steps=4, output_dir=str(tmp_path / "out"))
    args.model, args.dataset = str(model), [str(data)]
    result = run_megatron(args, "sft", _ctx(args, world_size=2), get_plugin_manager())
    rows = [
        json.loads(line)
        for line in (result.run_dir / "megatron_data" / "train.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 6 and rows[0]["messages"][0]["role"] == "user"
    assert result.last_checkpoint == result.run_dir / "checkpoint-4"
    assert (result.last_checkpoint / "adapter_config.json").is_file()
    assert json.loads((result.last_checkpoint / "swift_checkpoint.json").read_text())["complete"] is True
    assert json.loads((result.last_checkpoint / "args.json").read_text())["strategy"] == "megatron"
    assert [e[0] for e in log if isinstance(e, tuple)][:2] == ["from_hf_pretrained", "to_megatron_provider"]


def test_without_max_steps_the_run_says_megatron_counts_iterations(tmp_path):
    from swift_megatron.run import plan_from_args

    args = _args(megatron=True)
    with pytest.raises(SwiftError, match="needs --max_steps"):
        plan_from_args(args, "sft", _ctx(args, world_size=2), "/m", tmp_path / "d", tmp_path)
