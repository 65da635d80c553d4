"""Checkpoint folders read once (`Checkpoint`), heads as data (`HeadKind`), one loader, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from swift_core.atomic import atomic_dir, write_json_atomic, write_jsonl_atomic
from swift_core.errors import SwiftError
from swift_core.models.checkpoint import Checkpoint, model_head
from swift_core.models.heads import CAUSAL_LM, REWARD, head_for_scores, head_named, head_of_folder


def checkpoint(folder: Path, args: dict, *, adapter: bool = True, complete: bool = True, config=None) -> Path:
    folder.mkdir(parents=True)
    (folder / "args.json").write_text(json.dumps(args))
    if adapter:
        (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4}')
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    if complete:
        (folder / "swift_checkpoint.json").write_text('{"complete": true}')
    return folder


def test_an_old_adapter_checkpoint_reads_with_the_defaults_of_its_time(tmp_path):
    """args.json written before `head` and `tuner_type` were recorded."""
    old = {"model_dir": "/models/base", "family": "qwen2_5", "template": "qwen2_5", "saves_adapter": True}
    ckpt = Checkpoint.read(checkpoint(tmp_path / "checkpoint-2", old))
    assert (ckpt.base_model, ckpt.family, ckpt.template) == ("/models/base", "qwen2_5", "qwen2_5")
    assert ckpt.tuner == "lora" and ckpt.head is CAUSAL_LM and ckpt.has_adapter
    assert ckpt.adapter_path == str(ckpt.path) and ckpt.tokenizer_path is None
    assert ckpt.weights() == "/models/base" and ckpt.weights("/elsewhere") == "/elsewhere"


def test_the_head_comes_from_head_else_scores_else_the_weights_config(tmp_path):
    assert Checkpoint.read(checkpoint(tmp_path / "a", {"model_dir": "b", "head": "reward"})).head is REWARD
    assert Checkpoint.read(checkpoint(tmp_path / "b", {"model_dir": "b", "scores": "reward"})).head is REWARD
    assert (
        Checkpoint.read(checkpoint(tmp_path / "c", {"model_dir": "b", "scores": "logps"})).head is CAUSAL_LM
    )
    full = checkpoint(
        tmp_path / "d",
        {"saves_adapter": False, "tuner_type": "full"},
        adapter=False,
        config={"architectures": ["Qwen2ForSequenceClassification"]},
    )
    ckpt = Checkpoint.read(full)
    assert ckpt.head is REWARD and not ckpt.has_adapter and ckpt.weights() == str(full)
    assert model_head(str(full)) is REWARD


def test_unreadable_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(SwiftError, match="does not exist"):
        Checkpoint.read(tmp_path / "missing")
    half = checkpoint(tmp_path / "half", {"model_dir": "b"}, complete=False)
    with pytest.raises(SwiftError, match="incomplete"):
        Checkpoint.read(half)
    assert Checkpoint.find(tmp_path) is None  # not a Swift folder
    nameless = Checkpoint.read(checkpoint(tmp_path / "nameless", {}))
    with pytest.raises(SwiftError, match="does not name the base model; pass --model"):
        nameless.weights()
    full = Checkpoint.read(checkpoint(tmp_path / "full", {"saves_adapter": False}, adapter=False))
    with pytest.raises(SwiftError, match="holds full weights .* nothing to merge"):
        full.require_adapter("swift export --merge_lora", "nothing to merge")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "args.json").write_text("[1]")
    (tmp_path / "bad" / "swift_checkpoint.json").write_text("{}")
    with pytest.raises(SwiftError, match="expected a JSON object"):
        Checkpoint.read(tmp_path / "bad")


def test_a_head_is_data_the_loader_trainer_and_scorer_ask_for(tmp_path):
    assert head_for_scores("reward") is REWARD and head_for_scores("logps") is CAUSAL_LM
    assert head_named("causal_lm") is CAUSAL_LM and REWARD.generates is False
    with pytest.raises(SwiftError, match="unknown model head"):
        head_named("value")
    no_pad = SimpleNamespace(pad_token_id=None, eos_token_id=7)
    assert REWARD.pad_token_id(no_pad) == 7 and CAUSAL_LM.pad_token_id(no_pad) == 0
    assert REWARD.config_overrides(no_pad) == {"num_labels": 1, "pad_token_id": 7}
    assert CAUSAL_LM.config_overrides(no_pad) == {}
    assert REWARD.model_class().__name__ == "AutoModelForSequenceClassification"
    assert head_of_folder(tmp_path) is None and head_of_folder("") is None


def test_an_engine_refuses_a_reward_model_before_loading_anything(tmp_path):
    from swift_core.models.loader import prepare_for_inference

    ckpt = checkpoint(tmp_path / "rm", {"model_dir": "/nowhere", "head": "reward"})
    with pytest.raises(SwiftError, match="is a reward model .*scores answers instead of writing them"):
        prepare_for_inference(str(ckpt), head=CAUSAL_LM)


def test_the_loader_loads_a_checkpoint_with_its_head_tokenizer_and_adapter(tiny_qwen, tmp_path):
    """A LoRA reward checkpoint: base with the one-output head, the adapter put on by its tuner."""
    import transformers
    from peft import LoraConfig, get_peft_model

    from swift_core.models.loader import load_for_inference

    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_qwen, num_labels=1, pad_token_id=0
    )
    folder = tmp_path / "checkpoint-1"
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], task_type="SEQ_CLS")).save_pretrained(
        folder
    )
    (folder / "args.json").write_text(
        json.dumps(
            {"model_dir": str(tiny_qwen), "family": "qwen2_5", "template": "qwen2_5", "head": "reward"}
        )
    )
    (folder / "swift_checkpoint.json").write_text('{"complete": true}')
    loaded = load_for_inference(str(folder), device="cpu", head=REWARD)
    assert loaded.head is REWARD and loaded.checkpoint is not None and loaded.adapter == str(folder)
    assert loaded.template.name == "qwen2_5" and loaded.family.name == "qwen2_5"
    assert type(loaded.model).__name__ == "PeftModelForSequenceClassification"
    assert loaded.model.config.num_labels == 1 and not loaded.model.training
    with pytest.raises(SwiftError, match="use one of"):
        load_for_inference(str(folder), device="cpu", torch_dtype="int8", head=REWARD)


def test_swift_infer_port_is_served_by_the_cli_not_the_infer_pipeline(monkeypatch):
    from swift_core.cli import infer_cmd
    from swift_core.infer import run as infer_run
    from swift_core.infer.arguments import InferArguments
    from swift_core.serve import deploy

    served = []
    monkeypatch.setattr(deploy, "run_deploy", lambda args, manager=None: served.append(args))
    monkeypatch.setattr(infer_run, "run_infer", lambda args: pytest.fail("run_infer ran"))
    args = InferArguments(model="m", port=0)
    infer_cmd._infer(args)
    assert served == [args]


def test_atomic_writes_leave_nothing_half_written(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": Path("p")})
    write_jsonl_atomic(tmp_path / "sub" / "r.jsonl", [{"i": 1}, {"i": 2}])
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": "p"}
    assert (tmp_path / "sub" / "r.jsonl").read_text() == '{"i": 1}\n{"i": 2}\n'
    (tmp_path / "out").mkdir()  # an empty folder is replaced
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "w").write_text("1")
    assert (tmp_path / "out" / "w").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "broken") as tmp:
        (tmp / "w").write_text("1")
        raise RuntimeError("interrupted")
    with pytest.raises(OSError), atomic_dir(tmp_path / "out") as tmp:  # a finished one is kept
        (tmp / "other").write_text("2")
    assert not (tmp_path / "broken").exists() and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "w"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "out", "sub"]  # no temporary left
