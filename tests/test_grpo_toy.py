"""`swift rlhf --rlhf_type grpo` end to end: the reward rises on a verifiable toy task, a third
party's reward function is used from the CLI and hidden by policy, and a SIGKILLed run resumes to
the adapter an uninterrupted run ends with.

The toy task is the demo's "kind" question ("Is the first word a colour or an animal: red cat?"),
generated offline with its checkable answer in the `solution` column. The demo's fine-tuned model
answers it greedily but, sampled at temperature 1 from its 20 likeliest tokens, often wanders off;
GRPO with the `accuracy` reward should sharpen it; on this machine it has not yet (2026-12-01, see
the skip reason and docs/grpo.md): REWARD_GAIN is the target, not a measurement.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import install_fixture, run_swift

pytestmark = pytest.mark.slow

PROMPTS = 8
STEPS = 20
REWARD_GAIN = 0.15  # sampled accuracy on the task's prompts must rise at least this much (see docstring)
SAMPLING = ("--temperature", "1.0", "--top_k", "20", "--max_completion_length", "6")


def _prompt_rows(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _grpo(model, data: Path, out: Path, *extra, env=None):
    return run_swift(
        "rlhf",
        "--model",
        str(model),
        "--dataset",
        str(data),
        "--rlhf_type",
        "grpo",
        "--output_dir",
        str(out),
        "--num_generations",
        "8",
        "--per_device_train_batch_size",
        "4",
        "--lora_rank",
        "16",
        "--lora_alpha",
        "32",
        "--beta",
        "0",
        "--logging_steps",
        "2",
        *SAMPLING,
        *extra,
        env={"OMP_NUM_THREADS": "2", **(env or {})},
    )


def _sampled_accuracy(model: str, rows: list[dict], adapter: str | None) -> float:
    """Accuracy of 4 samples per prompt, drawn as the rollouts are (temperature 1, top 20)."""
    from swift_core.engines.protocol import EngineConfig, GenerationRequest
    from swift_core.engines.transformers.engine import TransformersEngine

    engine = TransformersEngine(
        EngineConfig(model=model, adapters={"grpo": adapter} if adapter else {}, max_batch_size=64)
    )
    requests = [
        GenerationRequest(
            messages=r["messages"],
            n=4,
            max_tokens=6,
            temperature=1.0,
            top_k=20,
            seed=11,
            adapter="grpo" if adapter else None,
        )
        for r in rows
    ]
    ok = [
        c.text.strip() == r["solution"]
        for r, response in zip(rows, engine.generate_batch(requests))
        for c in response.choices
    ]
    return sum(ok) / len(ok)


@pytest.mark.skipif(
    not os.environ.get("SWIFT_GRPO_TOY"),
    reason="issue 18 open: the reward does not rise yet (2026-12-01: sampled accuracy on the 8 prompts "
    "0.47 -> 0.34 at lr 1e-3, 0.47 -> 0.50 at lr 3e-4 after 20 steps; docs/grpo.md, Status). An expected "
    "failure proves nothing and costs CI minutes: run it with SWIFT_GRPO_TOY=1 while working on it",
)
def test_reward_rises_on_the_toy_task(demo_result, tmp_path):
    from swift_core.demo.tasks import make_split

    merged = tmp_path / "sft-merged"
    r = run_swift(
        "export", "--adapters", demo_result["adapter"], "--merge_lora", "true", "--output_dir", str(merged)
    )
    assert r.returncode == 0, r.stderr
    train, _ = make_split(900, 0, seed=5)
    rows = [
        {"messages": [row["messages"][0]], "solution": row["messages"][1]["content"]}
        for row in train
        if row["task"] == "kind"
    ][:PROMPTS]
    data = _prompt_rows(tmp_path, rows)
    out = tmp_path / "grpo"
    r = _grpo(
        merged,
        data,
        out,
        "--reward_funcs",
        "accuracy",
        "--max_steps",
        str(STEPS),
        "--save_steps",
        str(STEPS),
        "--learning_rate",
        "1e-3",
    )
    assert r.returncode == 0, r.stderr
    ckpt = next(out.glob(f"v*/checkpoint-{STEPS}"))
    before = _sampled_accuracy(str(merged), rows, None)
    after = _sampled_accuracy(str(merged), rows, str(ckpt))
    assert after >= before + REWARD_GAIN, (before, after)
    logs = [json.loads(line) for line in next(out.glob("v*/logging.jsonl")).read_text().splitlines()]
    assert "rewards/accuracy/mean" in logs[0] and "frac_reward_zero_std" in logs[0]
    assert (ckpt.parent / "loss.png").is_file()


def test_third_party_reward_function_from_the_cli_and_hidden_by_policy(tiny_qwen, tmp_path):
    site = install_fixture(tmp_path, "swift-myreward")
    data = _prompt_rows(
        tmp_path,
        [
            {"messages": [{"role": "user", "content": f"{i}?"}], "solution": str(i), "level": i}
            for i in range(4)
        ],
    )
    calls = tmp_path / "calls.jsonl"
    r = _grpo(
        tiny_qwen,
        data,
        tmp_path / "out",
        "--reward_funcs",
        "my_reward",
        "accuracy",
        "--my_reward_max_chars",
        "5",
        "--max_steps",
        "2",
        "--save_steps",
        "2",
        env={"PYTHONPATH": str(site), "SWIFT_MYREWARD_LOG": str(calls)},
    )
    assert r.returncode == 0, r.stderr
    batches = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(batches) == 2 and len(batches[0]["completions"]) == 4 * 8
    assert "solution" in batches[0]["columns"] and "level" in batches[0]["columns"]
    logs = next((tmp_path / "out").glob("v*/logging.jsonl")).read_text()
    assert "rewards/my_reward/mean" in logs
    policy = tmp_path / "policy.toml"
    policy.write_text('deny = ["swift-myreward"]\n')
    denied = _grpo(
        tiny_qwen,
        data,
        tmp_path / "out2",
        "--reward_funcs",
        "my_reward",
        "--max_steps",
        "1",
        env={"PYTHONPATH": str(site), "SWIFT_POLICY": str(policy)},
    )
    assert denied.returncode == 2
    assert "unknown reward function 'my_reward'" in denied.stderr and "myreward (blocked)" in denied.stderr
    help_text = run_swift("rlhf", "--help", env={"PYTHONPATH": str(site), "SWIFT_POLICY": str(policy)}).stdout
    assert "--my_reward_max_chars" not in help_text


def test_grpo_resumes_after_sigkill_like_an_uninterrupted_run(tiny_qwen, tmp_path):
    """The swift-killer fixture SIGKILLs the run at step 3 (checkpoint-4 half-written); resuming
    from the newest complete checkpoint samples the same completions (seeds follow the step) and
    ends with the adapter an uninterrupted run ends with."""
    import torch
    from safetensors.torch import load_file

    site = install_fixture(tmp_path, "swift-killer")
    data = _prompt_rows(
        tmp_path,
        [
            {"messages": [{"role": "user", "content": f"{i} plus {i}?"}], "solution": str(2 * i)}
            for i in range(6)
        ],
    )
    common = (
        "--reward_funcs",
        "length",
        "--soft_cache_length",
        "4",
        "--max_steps",
        "5",
        "--save_steps",
        "2",
        "--seed",
        "7",
        "--learning_rate",
        "1e-2",
        "--per_device_train_batch_size",
        "2",
    )
    straight = _grpo(tiny_qwen, data, tmp_path / "a", *common)
    assert straight.returncode == 0, straight.stderr
    killed = _grpo(
        tiny_qwen, data, tmp_path / "b", *common, env={"PYTHONPATH": str(site), "SWIFT_KILL_AT_STEP": "3"}
    )
    assert killed.returncode == -9, killed.stderr
    resumed = _grpo(
        tiny_qwen,
        data,
        tmp_path / "b",
        *common,
        "--resume_from_checkpoint",
        "auto",
        env={"PYTHONPATH": str(site)},
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr and "checkpoint-2" in resumed.stderr
    a = load_file(next((tmp_path / "a").glob("v*/checkpoint-5")) / "adapter_model.safetensors")
    b = load_file(next((tmp_path / "b").glob("v*/checkpoint-5")) / "adapter_model.safetensors")
    moved = load_file(next((tmp_path / "a").glob("v*/checkpoint-2")) / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert any(not torch.allclose(a[k], moved[k]) for k in a)  # training changed the adapter after step 2
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
