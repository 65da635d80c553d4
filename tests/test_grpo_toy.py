"""`swift rlhf --rlhf_type grpo` end to end: the reward rises on a verifiable toy task, a third
party's reward function is used from the CLI and hidden by policy, and a SIGKILLed run resumes to
the adapter an uninterrupted run ends with.

The toy task: the demo's "animal" and "count" questions ("Is there an animal in: green white
red?" -> "no", "How many words are in: red cat?" -> "2"), generated offline by
`swift_core.demo.tasks.make_split` with the checkable answer in the `solution` column, asked of
the demo's fine-tuned model (the session's `demo_result`, merged), sampled as the rollouts are
(temperature 1 from the 5 likeliest tokens, 3 tokens).

Robust to the start model by construction: the prompts are chosen by the start model's own
measured accuracy. Of POOL candidates, each sampled SELECT_SAMPLES times (seed SELECT_SEED), the
PROMPTS whose accuracy is nearest 0.5 among those it gets neither always right nor always wrong
(`choose_prompts`): every group has a signal and every prompt headroom, whatever the start model
knows. GRPO then trains on them, all in every step, GENERATIONS completions each, STEPS steps at
lr 1e-3 with cosine decay (3e-3 collapsed at step 2 on one start model).

The threshold: on the chosen prompts, the accuracy of EVAL_SAMPLES fresh samples per prompt (seed
EVAL_SEED, used neither by the selection nor by the rollouts) must close at least HEADROOM_SHARE
of the headroom (after >= before + 0.3 * (1 - before)), and the logged training reward of the
last 3 steps must exceed that of the first 3. A fixed gain cannot be asked of every start model
(from 0.84, +0.15 leaves almost nothing). Measured (docs/grpo.md, "The toy task"): passed at
seeds 1-3 on the demo model (0.73 -> 0.88-0.91, 0.81 needed) and on the length-grouped demo SFT
(0.50 -> 0.72-0.73, 0.65 needed) and on the demo built with --seed 1 (0.69 -> 0.83-0.84, 0.78
needed); at seed 2 on three more (a 60-step SFT, the pre-issue-20 demo, the session's own demo:
0.46-0.79 before); every run 0.05-0.09 above its threshold. With
the advantages' sign flipped it fails (0.73 -> 0.02).

Why not the demo's "kind" question (docs/grpo.md): its answer is a 4-token word and the model's
failures are draws from a flat tail of ~1900 tokens; each update pushes the few sampled tail tokens
down while the correct completion's log-prob barely rises (LoRA), so its sampled accuracy stayed
flat in every setting tried. tests/test_grpo.py checks the direction of an update and the
log-probs' alignment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import install_fixture, run_swift

pytestmark = pytest.mark.slow

STEPS = 12
SEED = 2
GENERATIONS = 16
PROMPTS = 8  # every prompt in every step
LEARNING_RATE = "1e-3"  # 3e-3 collapsed on one start model at step 2 (docs/grpo.md)
SCHEDULER = "cosine"  # constant rates collapsed in one late step at some seeds
POOL = 60  # candidate prompts: the demo's "animal" and "count" questions
SELECT_SAMPLES = 16  # per candidate, to measure the start model's accuracy on it
SELECT_SEED = 13
EVAL_SAMPLES = 32  # per chosen prompt, before and after
EVAL_SEED = 11  # neither the selection's nor the rollouts' (those follow --seed and the step)
HEADROOM_SHARE = 0.3  # the sampled accuracy must close at least this share of 1 - before
SAMPLING = ("--temperature", "1.0", "--top_k", "5", "--max_completion_length", "3")


def _prompt_rows(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _grpo(model, data: Path, out: Path, *extra, env=None, timeout: float = 300):
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
        "1",
        *SAMPLING,
        *extra,
        env={"OMP_NUM_THREADS": "1", **(env or {})},
        timeout=timeout,
    )


def _engine(model: str, adapter: str | None):
    from swift_core.engines.protocol import EngineConfig
    from swift_core.engines.transformers.engine import TransformersEngine

    return TransformersEngine(
        EngineConfig(model=model, adapters={"grpo": adapter} if adapter else {}, max_batch_size=256)
    )


def _sampled_accuracies(
    engine, rows: list[dict], samples: int, seed: int, adapter: str | None
) -> list[float]:
    """Per prompt, the share of `samples` completions the `accuracy` reward scores 1, drawn as the
    rollouts are (temperature 1, top 5, 3 tokens)."""
    from swift_core.engines.protocol import GenerationRequest
    from swift_core.rl.builtin_rewards import accuracy

    requests = [
        GenerationRequest(
            messages=r["messages"],
            n=samples,
            max_tokens=3,
            temperature=1.0,
            top_k=5,
            seed=seed,
            adapter=adapter,
        )
        for r in rows
    ]
    result = []
    for r, response in zip(rows, engine.generate_batch(requests)):
        texts = [c.text for c in response.choices]
        scores = accuracy(texts, [r["solution"]] * len(texts))
        result.append(sum(scores) / len(scores))
    return result


def _candidate_prompts() -> list[dict]:
    """The first POOL "animal" and "count" questions of the demo's generated training split (one
    word each as the answer: "yes"/"no", "2".."5"), the answer in `solution`."""
    from swift_core.demo.tasks import make_split

    train, _ = make_split(900, 90, seed=5)
    rows = [
        {"messages": [row["messages"][0]], "solution": row["messages"][1]["content"]}
        for row in train
        if row["task"] in ("animal", "count")
    ]
    return rows[:POOL]


def choose_prompts(accuracies: list[float], k: int = PROMPTS) -> list[int]:
    """The k candidates whose measured accuracy is nearest 0.5, among those the start model gets
    neither always right nor always wrong: a group whose rewards all tie has no signal, and a
    prompt answered right every time has no headroom. Fewer than k such candidates: a start model
    GRPO cannot be asked to improve on this task, said so by name."""
    usable = [i for i, a in enumerate(accuracies) if 0.0 < a < 1.0]
    if len(usable) < k:
        raise AssertionError(
            f"only {len(usable)} of {len(accuracies)} candidate prompts are answered right sometimes but "
            f"not always by the start model (need {k}): {accuracies}"
        )
    return sorted(sorted(usable, key=lambda i: (abs(accuracies[i] - 0.5), i))[:k])


def test_choose_prompts_keeps_the_ones_with_signal_and_headroom():
    accuracies = [1.0, 0.0, 0.5, 0.9, 0.25, 0.75, 0.1, 1.0]
    assert choose_prompts(accuracies, 3) == [2, 4, 5]
    assert choose_prompts(accuracies, 5) == [2, 3, 4, 5, 6]
    with pytest.raises(AssertionError, match="only 5 of 8"):
        choose_prompts(accuracies, 6)


def test_reward_rises_on_the_toy_task(demo_result, tmp_path):
    merged = tmp_path / "sft-merged"
    r = run_swift(
        "export", "--adapters", demo_result["adapter"], "--merge_lora", "true", "--output_dir", str(merged)
    )
    assert r.returncode == 0, r.stderr
    _grpo_on_the_toy_task(merged, tmp_path)


def _grpo_on_the_toy_task(merged: Path, tmp_path: Path, seed: int = SEED) -> dict:
    candidates = _candidate_prompts()
    engine = _engine(str(merged), None)
    measured = _sampled_accuracies(engine, candidates, SELECT_SAMPLES, SELECT_SEED, None)
    chosen = choose_prompts(measured)
    rows = [candidates[i] for i in chosen]
    before = sum(_sampled_accuracies(engine, rows, EVAL_SAMPLES, EVAL_SEED, None)) / len(rows)
    del engine
    data = _prompt_rows(tmp_path, rows)
    out = tmp_path / "grpo"
    r = _grpo(
        merged,
        data,
        out,
        "--reward_funcs",
        "accuracy",
        "--num_generations",
        str(GENERATIONS),
        "--per_device_train_batch_size",
        str(PROMPTS),
        "--max_steps",
        str(STEPS),
        "--save_steps",
        str(STEPS),
        "--learning_rate",
        LEARNING_RATE,
        "--lr_scheduler_type",
        SCHEDULER,
        "--seed",
        str(seed),
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    ckpt = next(out.glob(f"v*/checkpoint-{STEPS}"))
    logs = [json.loads(line) for line in next(out.glob("v*/logging.jsonl")).read_text().splitlines()]
    assert "rewards/accuracy/mean" in logs[0] and "frac_reward_zero_std" in logs[0]
    logged = [entry["reward"] for entry in logs if "reward" in entry]
    assert len(logged) == STEPS
    after_engine = _engine(str(merged), str(ckpt))
    after = sum(_sampled_accuracies(after_engine, rows, EVAL_SAMPLES, EVAL_SEED, "grpo")) / len(rows)
    first, last = sum(logged[:3]) / 3, sum(logged[-3:]) / 3
    result = {"before": before, "after": after, "first3": first, "last3": last, "logged": logged}
    print(
        f"chosen {[round(measured[i], 2) for i in chosen]}; sampled accuracy "
        f"{before:.3f} -> {after:.3f}; logged reward {first:.3f} -> {last:.3f}",
        flush=True,
    )
    assert (ckpt.parent / "loss.png").is_file()
    assert after >= before + HEADROOM_SHARE * (1 - before), result
    assert last > first, result
    return result


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
