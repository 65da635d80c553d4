"""`swift rlhf` end to end: preference learning that generalises, bad input, loss plugins.

Reward accuracy is measured on held-out pairs (word lists never in the training pairs), with
answers balanced so that preferring common answers scores 50%. Measured on this machine
(2026-11-30), LoRA on the demo's pretrained base, 80 steps: DPO 88%, SimPO 90%.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import adapter_at, assert_same_adapter, install_fixture, kill_then_resume, run_swift

pytestmark = pytest.mark.slow

# Reward model (LoRA r=16, lr 1e-3, 120 steps) on the demo's fine-tuned model (its adapter merged):
# held-out accuracy measured 2026-12-01 on this 2-core machine with seeds 42 (the tests'), 1, 2:
# 74%, 67%, 68%; a random head gets about 50% (one standard deviation over 116 pairs: 4.6 points).
# On the demo's pretrained-only base the same runs gave 57-65% here (83/72/89% on the machine of
# 2026-11-30): ranking answers to the tasks needs a body that knows them.
RM_STEPS = 120
RM_THRESHOLD = 0.62


@pytest.fixture(scope="module")
def pref_data(tmp_path_factory):
    from swift_core.demo.tasks import preference_split

    train, held = preference_split(900, 150)
    root = tmp_path_factory.mktemp("pref")
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in held))
    return root


def _rlhf(model, data: Path, out: Path, *extra, env=None):
    return run_swift(
        "rlhf",
        "--model",
        str(model),
        "--dataset",
        str(data / "train.jsonl"),
        "--val_dataset",
        str(data / "eval.jsonl"),
        "--output_dir",
        str(out),
        "--per_device_train_batch_size",
        "8",
        "--lora_rank",
        "16",
        "--lora_alpha",
        "32",
        "--logging_steps",
        "20",
        *extra,
        env={"OMP_NUM_THREADS": "2", **(env or {})},
    )


def _final_eval(out: Path) -> dict:
    logs = [json.loads(line) for line in next(out.glob("v*/logging.jsonl")).read_text().splitlines()]
    return [entry for entry in logs if "eval_rewards/accuracies" in entry][-1]


# From the demo's pretrained base, 80 steps; measured 2026-12-01 on this machine: SimPO 72.4%.
@pytest.mark.parametrize("loss, extra, threshold", [("dpo", (), 0.75), ("simpo", ("--beta", "2.0"), 0.70)])
def test_preference_learning_generalises_to_held_out_pairs(
    demo_result, pref_data, tmp_path, loss, extra, threshold
):
    out = tmp_path / loss
    r = _rlhf(
        demo_result["base"],
        pref_data,
        out,
        "--rlhf_type",
        loss,
        *extra,
        "--max_steps",
        "80",
        "--save_steps",
        "80",
        "--eval_steps",
        "80",
        "--learning_rate",
        "2e-3",
    )
    assert r.returncode == 0, r.stderr
    final = _final_eval(out)
    assert final["eval_rewards/accuracies"] >= threshold, final
    assert final["eval_rewards/margins"] > 0
    ckpt = next(out.glob("v*/checkpoint-80"))
    args = json.loads((ckpt / "args.json").read_text())
    assert args["mode"] == f"rlhf:{loss}" and (ckpt / "adapter_model.safetensors").is_file()
    assert args["reference"] == ("adapter disabled" if loss == "dpo" else None)


def test_the_seed_spelling_and_kto_from_pairs(tiny_qwen, pref_data, tmp_path):
    r = _rlhf(
        tiny_qwen,
        pref_data,
        tmp_path / "a",
        "--method",
        "dpo",
        "--beta",
        "0.1",
        "--max_steps",
        "2",
        "--save_steps",
        "2",
    )
    assert r.returncode == 0, r.stderr
    r = _rlhf(
        tiny_qwen, pref_data, tmp_path / "k", "--rlhf_type", "kto", "--max_steps", "2", "--save_steps", "2"
    )
    assert r.returncode == 0, r.stderr
    assert "examples for kto" in r.stderr
    logs = next((tmp_path / "k").glob("v*/logging.jsonl")).read_text()
    assert "rewards/chosen" in logs


def test_precomputed_reference_matches_the_live_reference(tiny_qwen, pref_data, tmp_path):
    common = (
        "--rlhf_type",
        "dpo",
        "--max_steps",
        "3",
        "--save_steps",
        "3",
        "--seed",
        "3",
        "--lora_dropout",
        "0",
    )
    live = _rlhf(tiny_qwen, pref_data, tmp_path / "live", *common)
    pre = _rlhf(tiny_qwen, pref_data, tmp_path / "pre", *common, "--precompute_ref_log_probs", "true")
    assert live.returncode == 0 and pre.returncode == 0, pre.stderr
    assert "precomputing reference log-probs (adapter disabled)" in pre.stderr
    losses = [
        [
            e["loss"]
            for e in map(json.loads, next((tmp_path / d).glob("v*/logging.jsonl")).read_text().splitlines())
            if "loss" in e
        ]
        for d in ("live", "pre")
    ]
    assert losses[0] == pytest.approx(losses[1], abs=1e-4)


@pytest.mark.parametrize(
    "rows, extra, message",
    [
        (
            [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
            (),
            "line 1, field 'rejected_response'",
        ),
        ([{"prompt": "q", "chosen": "", "rejected": "b"}], (), "line 1"),
        (
            [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
            ("--rlhf_type", "kto"),
            "line 1, field 'label'",
        ),
    ],
)
def test_bad_preference_rows_fail_before_the_model_loads(tiny_qwen, tmp_path, rows, extra, message):
    data = tmp_path / "bad"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = _rlhf(tiny_qwen, data, tmp_path / "out", "--max_steps", "1", *extra)
    assert r.returncode == 2, r.stderr
    assert f"{data / 'train.jsonl'}, {message}" in r.stderr
    assert "Loading weights" not in r.stderr and "Traceback" not in r.stderr


def test_third_party_loss_trains_and_policy_denial_hides_it(tiny_qwen, pref_data, tmp_path):
    site = install_fixture(tmp_path, "swift-myloss")
    r = _rlhf(
        tiny_qwen,
        pref_data,
        tmp_path / "out",
        "--rlhf_type",
        "myloss",
        "--max_steps",
        "2",
        "--save_steps",
        "2",
        env={"PYTHONPATH": str(site)},
    )
    assert r.returncode == 0, r.stderr
    policy = tmp_path / "policy.toml"
    policy.write_text('deny = ["swift-myloss"]\n')
    denied = _rlhf(
        tiny_qwen,
        pref_data,
        tmp_path / "out2",
        "--rlhf_type",
        "myloss",
        "--max_steps",
        "2",
        env={"PYTHONPATH": str(site), "SWIFT_POLICY": str(policy)},
    )
    assert denied.returncode == 2
    assert "unknown alignment loss 'myloss'" in denied.stderr and "myloss (blocked)" in denied.stderr


def test_reward_model_generalises_and_swift_infer_agrees_with_its_eval(demo_result, pref_data, tmp_path):
    """`--rlhf_type rm` on the demo's fine-tuned model: held-out pairs ranked right well above the
    50% a prior-only model gets; scoring the same pairs with `swift infer` gives the same accuracy."""
    merged = tmp_path / "sft-merged"
    r = run_swift(
        "export", "--adapters", demo_result["adapter"], "--merge_lora", "true", "--output_dir", str(merged)
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / "rm"
    steps = str(RM_STEPS)
    r = _rlhf(
        merged,
        pref_data,
        out,
        "--rlhf_type",
        "rm",
        "--max_steps",
        steps,
        "--save_steps",
        steps,
        "--eval_steps",
        steps,
        "--learning_rate",
        "1e-3",
    )
    assert r.returncode == 0, r.stderr
    final = _final_eval(out)
    assert final["eval_rewards/accuracies"] >= RM_THRESHOLD, final
    ckpt = next(out.glob(f"v*/checkpoint-{steps}"))
    scored = tmp_path / "scores.jsonl"
    r = run_swift(
        "infer",
        "--adapters",
        str(ckpt),
        "--val_dataset",
        str(pref_data / "eval.jsonl"),
        "--result_path",
        str(scored),
        env={"OMP_NUM_THREADS": "2"},
    )
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in scored.read_text().splitlines()]
    accuracy = sum(x["score"] > x["rejected_score"] for x in results) / len(results)
    assert abs(accuracy - final["eval_rewards/accuracies"]) <= 1 / len(results) + 1e-9


@pytest.mark.parametrize(
    "extra, reference, weights",
    [
        (("--quant_method", "bnb", "--quant_bits", "4"), "adapter disabled", "adapter_model.safetensors"),
        (("--tuner_type", "full"), "frozen copy", "model.safetensors"),
    ],
)
def test_dpo_trains_with_qlora_and_full_fine_tuning(
    tiny_qwen, pref_data, tmp_path, extra, reference, weights
):
    out = tmp_path / "out"
    r = _rlhf(
        tiny_qwen, pref_data, out, "--rlhf_type", "dpo", "--max_steps", "2", "--save_steps", "2", *extra
    )
    assert r.returncode == 0, r.stderr
    ckpt = next(out.glob("v*/checkpoint-2"))
    args = json.loads((ckpt / "args.json").read_text())
    assert args["reference"] == reference and (ckpt / weights).is_file()
    logs = next(out.glob("v*/logging.jsonl")).read_text()
    assert "rewards/margins" in logs


def test_rlhf_resumes_after_sigkill_like_an_uninterrupted_run(tiny_qwen, pref_data, tmp_path):
    """The swift-killer fixture SIGKILLs DPO at step 5 (checkpoint-6 half-written); resuming from
    the newest complete checkpoint ends with the adapter an uninterrupted run ends with."""
    site = install_fixture(tmp_path, "swift-killer")
    common = ("--rlhf_type", "dpo", "--max_steps", "8", "--save_steps", "2", "--seed", "7")
    straight = _rlhf(tiny_qwen, pref_data, tmp_path / "a", *common)
    assert straight.returncode == 0, straight.stderr

    def run(out, *flags, env):
        return _rlhf(tiny_qwen, pref_data, out, *common, *flags, env=env)

    resumed = kill_then_resume(run, tmp_path / "b", site, kill_at=5)
    assert "resuming from" in resumed.stderr and "checkpoint-4" in resumed.stderr
    assert_same_adapter(adapter_at(tmp_path / "a", 8), adapter_at(tmp_path / "b", 8))
