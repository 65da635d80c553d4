"""Online RL's parts on tiny inputs: reward functions, prompt rows, the rollout engine as a choice
with weights synced in place, metrics, and the errors a user meets before any model loads.

The end-to-end runs (reward rising on the toy task, a third-party reward plugin from the CLI,
resume after SIGKILL) are in tests/test_grpo_toy.py.
"""

from __future__ import annotations

import json

import pytest
from helpers import run_swift

from swift_core.errors import SwiftError

torch = pytest.importorskip("torch")


@pytest.fixture
def manager():
    from swift_core.testing import plugin_manager, plugin_source

    return plugin_manager(plugin_source("grpo-fakes", "grpo_fakes", "grpo-fakes"))


def _rewards(manager, names, **options):
    from swift_core.config.options import build_arguments
    from swift_core.config.rlhf_args import RLHFArguments
    from swift_core.rl.rewards import build_reward_functions

    args = build_arguments(RLHFArguments, manager, model="m", **options)
    return build_reward_functions(names, [], manager, args)


def _score(rewards, completions, **columns):
    from swift_core.rl.rewards import score_completions

    n = len(completions)
    return score_completions(
        rewards,
        prompts=[[{"role": "user", "content": "q"}]] * n,
        completions=completions,
        completion_ids=[[1] * (i + 1) for i in range(n)],
        max_completion_length=8,
        **columns,
    )


def test_builtin_rewards(manager):
    completions = ["The answer is <answer>7</answer>", "\\boxed{\\frac{1}{2}}", "50%", "8", " Seven. "]
    solution = ["7", "0.5", "0.5", "7", "seven"]
    accuracy, math = _score(_rewards(manager, ["accuracy", "math"]), completions, solution=solution)
    assert accuracy == [1.0, 0.0, 0.0, 0.0, 1.0]  # exact answers only
    assert math == [1.0, 1.0, 1.0, 0.0, 1.0]  # numbers compared as numbers
    (fmt,) = _score(_rewards(manager, ["format"]), ["<think>a</think> <answer>1</answer>", "1"])
    assert fmt == [1.0, 0.0]
    (fmt,) = _score(_rewards(manager, ["format"], format_pattern=r"\d+"), ["12", "1 2"])
    assert fmt == [1.0, 0.0]
    # DAPO soft overlong: ids of 1..8 tokens, max 8, cache 4: 0 up to 4 tokens, then down to -1 at 8.
    (length,) = _score(_rewards(manager, ["length"], soft_cache_length=4), ["x"] * 8)
    assert length == [0.0, 0.0, 0.0, 0.0, -0.25, -0.5, -0.75, -1.0]


def test_async_and_none_rewards_and_errors(manager):
    slow, none = _rewards(manager, ["slow_exact", "judge_none"])
    got = _score([slow, none], ["3", "4"], solution=["3", "3"])
    assert got[0] == [1.0, 0.0] and all(v != v for v in got[1])  # None -> NaN: not judged
    from swift_core.rl.rewards import BoundReward

    with pytest.raises(SwiftError, match="'short' returned 1 rewards for 2 completions"):
        _score([BoundReward("short", lambda **_: [1.0])], ["a", "b"])
    with pytest.raises(SwiftError, match="'boom' failed: ZeroDivisionError"):
        _score([BoundReward("boom", lambda **_: 1 / 0)], ["a"])
    with pytest.raises(SwiftError, match="--format_pattern '\\(' is not a regular expression"):
        _rewards(manager, ["format"], format_pattern="(")
    with pytest.raises(SwiftError, match="--reward_funcs is required"):
        _rewards(manager, [])
    from swift_core.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="unknown reward function 'acuracy'.*Did you mean 'accuracy'"):
        _rewards(manager, ["acuracy"])


def _prompts(tmp_path, rows):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_prompt_rows_keep_columns_and_need_what_rewards_read(tmp_path, manager):
    from swift_core.datasets.loader import BadRowError, load_rows
    from swift_core.rl.data import prompt_check
    from swift_core.rl.rewards import required_columns

    rows = [
        {"messages": [{"role": "user", "content": "1+2?"}], "solution": "3", "level": 1},
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
        {"query": "2+3?", "response": "5"},
    ]
    needed = required_columns(_rewards(manager, ["accuracy", "format"]))
    assert needed == {"solution": ["accuracy"]}
    loaded = load_rows(
        str(_prompts(tmp_path, rows)), check=prompt_check(needed), answer_optional=True, keep_columns=True
    )
    assert [r["columns"] for r in loaded.rows] == [
        {"solution": "3", "level": 1},
        {"solution": "4"},
        {"solution": "5"},
    ]
    assert all(r["messages"][-1]["role"] == "user" for r in loaded.rows)
    bad = _prompts(tmp_path, [rows[0], {"messages": [{"role": "user", "content": "no answer"}]}])
    with pytest.raises(BadRowError) as err:
        load_rows(str(bad), check=prompt_check(needed), answer_optional=True, keep_columns=True)
    assert f"{bad}, line 2" in str(err.value) and "'solution' column" in str(err.value)


def test_the_rollout_engine_is_a_choice_and_gets_the_weights_after_each_step(tmp_path, manager, tiny_qwen):
    """A third party's engine with `update_weights` is updated in place (no rebuild) with the
    policy's merged weights under the base model's names, before each step's rollouts."""
    import grpo_fakes
    from safetensors.torch import load_file

    from swift_core.config.options import build_arguments
    from swift_core.config.rlhf_args import RLHFArguments
    from swift_core.rl.pipeline import run_online_rl

    rows = [
        {"messages": [{"role": "user", "content": f"{a} plus 1?"}], "solution": str(a + 1)}
        for a in range(2, 5)
    ]
    args = build_arguments(
        RLHFArguments,
        manager,
        model=str(tiny_qwen),
        dataset=[str(_prompts(tmp_path, rows))],
        rlhf_type="grpo",
        reward_funcs=["slow_exact", "accuracy"],
        reward_weights=[1.0, 0.5],
        rollout_engine="inplace-test",
        num_generations=4,
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=5e-2,
        logging_steps=1,
        save_steps=3,
        output_dir=str(tmp_path / "out"),
    )
    grpo_fakes.UPDATES.clear()
    result = run_online_rl(args, manager)
    assert len(grpo_fakes.UPDATES) == 3  # before steps 1, 2 and 3
    base = load_file(str(tiny_qwen / "model.safetensors"))
    first, last = grpo_fakes.UPDATES[0], grpo_fakes.UPDATES[-1]
    assert set(first) >= set(base) - {"lm_head.weight"}  # the base model's names, adapter merged
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(first[name], base[name])  # before any step: the untouched base
    assert not torch.allclose(last[name], base[name])  # after two steps the policy moved
    logs = [json.loads(line) for line in (result.run_dir / "logging.jsonl").read_text().splitlines()]
    step = next(entry for entry in logs if "reward" in entry)
    for key in (
        "rewards/slow_exact/mean",
        "rewards/slow_exact/std",
        "rewards/accuracy/mean",
        "reward_std",
        "frac_reward_zero_std",
        "completions/mean_length",
        "completions/clipped_ratio",
        "kl",
        "clip_ratio/region_mean",
    ):
        assert key in step, key
    # ANSWERS 3, 4, 5, four by seed + index: each group of 4 holds every answer once.
    assert step["rewards/slow_exact/mean"] == pytest.approx(0.25)
    assert step["reward"] == pytest.approx(0.25 * 1.5)
    assert step["frac_reward_zero_std"] == 0.0


@pytest.mark.parametrize(
    "extra, message",
    [
        ((), "--reward_funcs is required"),
        (("--reward_funcs", "acuracy"), "unknown reward function 'acuracy'"),
        (("--reward_funcs", "accuracy", "--num_generations", "1"), "--num_generations must be at least 2"),
        (("--reward_funcs", "accuracy", "--rollout_engine", "nope"), "unknown engine 'nope'"),
        (("--reward_funcs", "reward_model"), "--reward_funcs reward_model needs --reward_model DIR"),
        (
            ("--reward_funcs", "accuracy", "format", "--reward_weights", "1"),
            "--reward_weights has 1 values for 2",
        ),
    ],
)
def test_bad_options_fail_before_the_model_loads(tiny_qwen, tmp_path, extra, message):
    data = _prompts(tmp_path, [{"messages": [{"role": "user", "content": "1+1?"}], "solution": "2"}])
    r = run_swift(
        "rlhf",
        "--model",
        str(tiny_qwen),
        "--dataset",
        str(data),
        "--rlhf_type",
        "grpo",
        "--max_steps",
        "1",
        *extra,
    )
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr and "Loading weights" not in r.stderr


def test_a_prompt_row_without_the_solution_is_named_before_the_model_loads(tiny_qwen, tmp_path):
    data = _prompts(
        tmp_path,
        [
            {"messages": [{"role": "user", "content": "1+1?"}], "solution": "2"},
            {"messages": [{"role": "user", "content": "x"}]},
        ],
    )
    r = run_swift(
        "rlhf",
        "--model",
        str(tiny_qwen),
        "--dataset",
        str(data),
        "--rlhf_type",
        "dapo",
        "--reward_funcs",
        "math",
        "--max_steps",
        "1",
    )
    assert r.returncode == 2, r.stderr
    assert f"{data}, line 2" in r.stderr and "solution" in r.stderr and "Loading weights" not in r.stderr


def test_the_loss_trains_on_the_sampled_tokens_and_a_step_favours_the_rewarded(tiny_qwen):
    """The log-probs the loss trains on are those of the tokens the engine sampled: equal to the
    engine's own logprobs (from left-padded prompts of two lengths) and to a forward over each
    prompt + completion alone; and one gradient step on the GRPO loss raises the advantage-weighted
    mean token log-probs, measured on those unpadded sequences. A slice shifted by one token or a
    flipped sign fails it (seen); a bug there would look like a flat reward."""
    from types import SimpleNamespace

    import transformers

    from swift_core.align.base import LossConfig
    from swift_core.engines.protocol import EngineConfig, GenerationRequest
    from swift_core.engines.transformers.engine import TransformersEngine
    from swift_core.rl.base import RolloutLogps
    from swift_core.rl.losses import GRPOLoss
    from swift_core.rl.options import GRPOOptions
    from swift_core.rl.rollout import Sample
    from swift_core.rl.trainer import OnlineRLTrainer, completion_logps

    g = 4
    prompts = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14]]
    engine = TransformersEngine(EngineConfig(model=str(tiny_qwen), seed=3))
    responses = engine.generate_batch(
        [
            GenerationRequest(prompt=p, n=g, max_tokens=4, temperature=1.0, seed=3, logprobs=True)
            for p in prompts
        ]
    )
    groups, engine_lps = [], []
    for response in responses:
        group = []
        for c in sorted(response.choices, key=lambda c: c.index):
            stopped = c.finish_reason == "stop"
            group.append(
                Sample(list(c.token_ids) + ([engine.stop_ids[0]] if stopped else []), c.text, not stopped)
            )
            engine_lps.append([t.logprob for t in c.logprobs])
        groups.append(group)
    trainer = SimpleNamespace(
        options=SimpleNamespace(num_generations=g, mask_truncated_completions=False), pad_id=engine.pad_id
    )
    batch = OnlineRLTrainer._batch(trainer, [{"prompt_ids": p} for p in prompts], groups, "cpu")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_qwen), dtype=torch.float32).eval()
    sequences = [(p, s.ids) for p, group in zip(prompts, groups) for s in group]

    @torch.no_grad()
    def alone() -> list[torch.Tensor]:  # each prompt + completion by itself: no padding at all
        out = []
        for prompt, ids in sequences:
            logits = model(input_ids=torch.tensor([prompt + ids])).logits[0, len(prompt) - 1 : -1]
            out.append(torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(ids)[:, None])[:, 0])
        return out

    lp = completion_logps(model, batch, 1.0)
    reference = alone()
    for i, ids in enumerate(s.ids for group in groups for s in group):
        assert torch.allclose(lp[i, : len(ids)], reference[i], atol=1e-5), i
        assert torch.allclose(lp[i, : len(engine_lps[i])], torch.tensor(engine_lps[i]), atol=1e-4), i
    config = LossConfig(beta=0.0, options=GRPOOptions())
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    advantages = GRPOLoss().advantages(rewards, g, config).values
    mask = batch["completion_mask"].float()
    GRPOLoss()(RolloutLogps(per_token_logps=lp, mask=mask, advantages=advantages), config).loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 1e-2 * p.grad
        after = alone()
    moved = sum(
        float(a) * float(new.mean() - old.mean()) for a, new, old in zip(advantages, after, reference)
    )
    assert moved > 0, moved
