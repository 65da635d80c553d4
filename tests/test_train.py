"""`swift sft` / `swift pt` end to end on a tiny model, as users run them (fresh processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import (
    adapter_at,
    assert_same_adapter,
    checkpoint_at,
    install_fixture,
    kill_then_resume,
    run_sft,
    run_swift,
    write_demo_rows,
)

pytestmark = pytest.mark.slow


def _task_file(tmp_path: Path, n: int = 48) -> Path:
    return write_demo_rows(tmp_path / "tasks.jsonl", n, seed=1, n_test=3)


def _sft(model, data, out, *extra, env=None):
    return run_sft(model, data, out, "--per_device_train_batch_size", "4", *extra, env=env)


def test_sft_lora_writes_a_complete_self_describingcheckpoint_at(tiny_qwen, tmp_path):
    out = tmp_path / "out"
    r = _sft(
        tiny_qwen,
        _task_file(tmp_path),
        out,
        "--max_steps",
        "12",
        "--save_steps",
        "6",
        "--split_dataset_ratio",
        "0.1",
    )
    assert r.returncode == 0, r.stderr
    assert "done: 12 steps" in r.stdout and "train tokens/s" in r.stdout and "peak RSS" in r.stdout
    run = next(out.glob("v0-*"))
    ckpt = run / "checkpoint-12"
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "args.json",
        "swift_checkpoint.json",
        "optimizer.pt",
        "scheduler.pt",
        "rng_state.pth",
        "trainer_state.json",
    ):
        assert (ckpt / name).is_file(), name
    args = json.loads((ckpt / "args.json").read_text())
    assert args["family"] == "qwen2_5" and args["template"] == "qwen2_5" and args["tuner_type"] == "lora"
    assert Path(args["model_dir"]) == Path(tiny_qwen)
    logs = [json.loads(line) for line in (run / "logging.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in logs if "loss" in entry]
    assert losses[-1] < losses[0]
    assert any("eval_loss" in entry for entry in logs)
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny_qwen, tmp_path):
    """The swift-killer fixture plugin SIGKILLs training at step 5 and leaves a half-written
    checkpoint-6; `--resume_from_checkpoint auto` must take checkpoint-4 and end where an
    uninterrupted run with the same seed ends."""
    site = install_fixture(tmp_path, "swift-killer")
    data = _task_file(tmp_path)
    common = ("--max_steps", "8", "--save_steps", "2", "--seed", "7")
    straight = _sft(tiny_qwen, data, tmp_path / "a", *common)
    assert straight.returncode == 0, straight.stderr

    def run(out, *flags, env):
        return _sft(tiny_qwen, data, out, *common, *flags, env=env)

    def half_written() -> None:
        assert not (checkpoint_at(tmp_path / "b", 6) / "swift_checkpoint.json").exists()

    resumed = kill_then_resume(run, tmp_path / "b", site, kill_at=5, after_kill=half_written)
    assert f"resuming from {checkpoint_at(tmp_path / 'b', 4)}" in resumed.stderr
    assert_same_adapter(adapter_at(tmp_path / "a", 8), adapter_at(tmp_path / "b", 8))
    state = json.loads((checkpoint_at(tmp_path / "b", 8) / "trainer_state.json").read_text())
    assert state["global_step"] == 8


def test_merge_gives_the_same_logits_as_base_plus_adapter(tiny_qwen, tmp_path):
    out = tmp_path / "out"
    r = _sft(tiny_qwen, _task_file(tmp_path), out, "--max_steps", "4", "--save_steps", "4")
    assert r.returncode == 0, r.stderr
    ckpt = checkpoint_at(out, 4)
    merged_dir = tmp_path / "merged"
    r = run_swift("export", "--adapters", str(ckpt), "--merge_lora", "true", "--output_dir", str(merged_dir))
    assert r.returncode == 0, r.stderr
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()(ids).logits
        adapted = (
            PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_qwen), ckpt)
            .eval()(ids)
            .logits
        )
    assert torch.allclose(merged, adapted, atol=1e-4)
    assert (merged_dir / "swift_checkpoint.json").is_file() and (merged_dir / "tokenizer.json").is_file()
    again = run_swift(
        "export", "--adapters", str(ckpt), "--merge_lora", "true", "--output_dir", str(merged_dir)
    )
    assert again.returncode == 2 and "already exists" in again.stderr


def test_pt_trains_on_every_token_with_packing(tiny_qwen, tmp_path):
    data = tmp_path / "corpus.jsonl"
    from swift_core.models.corpus import generate_corpus

    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in generate_corpus(64, seed=3)))
    r = run_swift(
        "pt",
        "--model",
        str(tiny_qwen),
        "--dataset",
        str(data),
        "--output_dir",
        str(tmp_path / "pt"),
        "--tuner_type",
        "full",
        "--max_steps",
        "3",
        "--save_steps",
        "3",
        "--packing",
        "true",
        "--max_length",
        "128",
        "--per_device_train_batch_size",
        "2",
    )
    assert r.returncode == 0, r.stderr
    args = json.loads((checkpoint_at(tmp_path / "pt", 3) / "args.json").read_text())
    assert args["template"] == "raw" and args["mode"] == "pt" and not args["saves_adapter"]
    assert (checkpoint_at(tmp_path / "pt", 3) / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--tuner_type", "lorra"), "unknown tuner 'lorra'. Did you mean 'lora'?"),
        (("--tuner_type", "full", "--quant_method", "bnb", "--quant_bits", "4"), "needs an adapter tuner"),
        (("--max_length", "5"), "shorter than every row"),
        (("--quant_bits", "4"), "--quant_bits needs --quant_method"),
        (("--device", "npu"), "unknown runtime 'npu'"),
    ],
)
def test_bad_input_fails_before_the_model_loads(tiny_qwen, tmp_path, extra, message):
    r = _sft(tiny_qwen, _task_file(tmp_path, 6), tmp_path / "out", "--max_steps", "1", *extra)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert "Loading weights" not in r.stderr


def test_sft_refuses_data_without_an_assistant_turn_to_learn(tiny_qwen, tmp_path):
    data = tmp_path / "noloss.jsonl"
    row = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "loss": False}]
    }
    data.write_text(json.dumps(row) + "\n")
    r = _sft(tiny_qwen, data, tmp_path / "out", "--max_steps", "1")
    assert r.returncode == 2 and "no row has an assistant turn to train on" in r.stderr
    assert "Loading weights" not in r.stderr


def _weights(folder: Path) -> dict:
    from safetensors.numpy import load_file

    files = sorted(folder.glob("*.safetensors"))
    assert files, f"no safetensors in {folder}"
    return {k: v for f in files for k, v in load_file(f).items()}


def _changed(base: dict, trained: dict, suffix: str) -> list[bool]:
    import numpy as np

    keys = [k for k in base if k.endswith(suffix)]
    assert keys, suffix
    return [not np.array_equal(base[k], trained[k]) for k in keys]


def test_third_party_tuner_with_its_own_options_from_the_cli_yaml_and_policy(tiny_qwen, tmp_path):
    """A plugin's tuner brings `--mytuner_*` flags: shown in --help, used from the CLI and from YAML,
    recorded in args.json, and gone (option and tuner) when policy blocks the plugin."""
    site = install_fixture(tmp_path, "swift-mytuner")
    env = {"PYTHONPATH": str(site)}
    data = _task_file(tmp_path, 8)
    help_text = run_swift("sft", "--help", env=env).stdout
    assert "Options of tuner mytuner (--tuner_type):" in help_text
    assert "--mytuner_include_norms BOOL" in help_text and "--mytuner_bias_init FLOAT" in help_text
    base = _weights(tiny_qwen)

    steps = ("--max_steps", "2", "--save_steps", "2")
    r = _sft(
        tiny_qwen,
        data,
        tmp_path / "cli",
        "--tuner_type",
        "mytuner",
        "--mytuner_include_norms",
        "false",
        *steps,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    checkpoint = checkpoint_at(tmp_path / "cli", 2)
    recorded = json.loads((checkpoint / "args.json").read_text())
    assert recorded["tuner_type"] == "mytuner" and recorded["mytuner_include_norms"] is False
    trained = _weights(checkpoint)
    assert all(_changed(base, trained, ".bias"))
    assert not any(_changed(base, trained, "norm.weight"))  # biases only, as the option says

    config = tmp_path / "mytuner.yaml"
    config.write_text(
        f"model: {tiny_qwen}\ndataset: [{data}]\noutput_dir: {tmp_path / 'yaml'}\ntuner_type: mytuner\n"
        "mytuner_include_norms: true\nmytuner_bias_init: 0.25\nmax_steps: 2\nsave_steps: 2\n"
        "per_device_train_batch_size: 4\nlearning_rate: 5.0e-3\n"
    )
    r = run_swift("sft", str(config), env=env)
    assert r.returncode == 0, r.stderr
    checkpoint = checkpoint_at(tmp_path / "yaml", 2)
    assert json.loads((checkpoint / "args.json").read_text())["mytuner_bias_init"] == 0.25
    trained = _weights(checkpoint)
    assert all(_changed(base, trained, "norm.weight"))
    bias = next(k for k in trained if k.endswith(".bias"))
    assert abs(float(trained[bias].mean()) - 0.25) < 0.05  # filled with 0.25, then 2 small steps

    policy = tmp_path / "policy.toml"
    policy.write_text('deny = ["swift-mytuner"]\n')
    blocked = {**env, "SWIFT_POLICY": str(policy)}
    assert "mytuner" not in run_swift("sft", "--help", env=blocked).stdout
    denied = _sft(tiny_qwen, data, tmp_path / "out2", "--tuner_type", "mytuner", *steps, env=blocked)
    assert denied.returncode == 2
    assert "unknown tuner 'mytuner'" in denied.stderr and "mytuner (blocked)" in denied.stderr
    flag = _sft(tiny_qwen, data, tmp_path / "out3", "--mytuner_include_norms", "false", *steps, env=blocked)
    assert flag.returncode == 2 and "unknown argument --mytuner_include_norms" in flag.stderr


def test_qlora_trains_on_the_cpu_from_the_cli(tiny_qwen, tmp_path):
    """plugins/swift-bnb: a 4-bit NF4 base with LoRA on top, through `swift sft`."""
    out = tmp_path / "out"
    r = _sft(
        tiny_qwen,
        _task_file(tmp_path, 16),
        out,
        "--quant_method",
        "bnb",
        "--quant_bits",
        "4",
        "--max_steps",
        "4",
        "--save_steps",
        "4",
    )
    assert r.returncode == 0, r.stderr
    ckpt = checkpoint_at(out, 4)
    args = json.loads((ckpt / "args.json").read_text())
    assert args["quant_method"] == "bnb" and args["quant_bits"] == 4
    assert (ckpt / "adapter_model.safetensors").is_file()
