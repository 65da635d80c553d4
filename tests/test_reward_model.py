"""Reward models: the Bradley-Terry loss against TRL's RewardTrainer, the descriptor that makes the
trainer build a sequence-classification head, LoRA keeping the head trainable and saved, and
`swift infer` scoring (prompt, response) rows exactly as a plain transformers + peft model does.

TRL is a test-only oracle: `RewardTrainer.compute_loss` runs with a `SimpleNamespace` standing in
for `self` and a fake model returning fixed rewards; the same rewards go to the Swift loss.
"""

from __future__ import annotations

import json
import types
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from helpers import run_swift

from swift_core.align.base import LossConfig, PreferenceScores
from swift_core.descriptors import AlignmentLossDescriptor
from swift_core.errors import SwiftError
from swift_core.plugins import PluginManager, builtin_sources
from swift_core.policy import Policy


def loss_config(beta: float = 0.1, rpo_alpha: float | None = None, **options: float) -> LossConfig:
    """The loss's own options (label_smoothing, simpo_gamma, ...) ride in `options`, as the CLI passes them."""
    return LossConfig(beta=beta, rpo_alpha=rpo_alpha, options=types.SimpleNamespace(**options))


PAIRS = [
    {
        "messages": [
            {"role": "user", "content": f"Is {i} even?"},
            {"role": "assistant", "content": "yes" if i % 2 == 0 else "no"},
        ],
        "rejected_response": "no" if i % 2 == 0 else "yes",
    }
    for i in range(24)
]


@pytest.fixture(scope="module")
def rm_loss():
    return PluginManager(Policy(), builtin_sources()).load("alignment_losses", "rm")()


def _trl_reward_loss(chosen: torch.Tensor, rejected: torch.Tensor, coefficient: float | None) -> torch.Tensor:
    from trl import RewardTrainer

    rewards = torch.cat([chosen, rejected]).unsqueeze(-1)
    accelerator = types.SimpleNamespace(gather_for_metrics=lambda x: x, gather=lambda x: x)
    stub = types.SimpleNamespace(
        model=types.SimpleNamespace(training=False),
        args=types.SimpleNamespace(center_rewards_coefficient=coefficient),
        accelerator=accelerator,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )

    def fake_model(**inputs):
        return types.SimpleNamespace(logits=rewards)

    inputs = {"input_ids": torch.zeros(2 * len(chosen), 3, dtype=torch.long)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    return RewardTrainer.compute_loss(stub, fake_model, inputs)


@pytest.mark.parametrize("coefficient", [None, 0.01, 0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_bradley_terry_loss_matches_trl_reward_trainer(rm_loss, coefficient, seed):
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.randn(8, generator=gen, dtype=torch.float64) * 2
    rejected = torch.randn(8, generator=gen, dtype=torch.float64) * 2
    expected = _trl_reward_loss(chosen, rejected, coefficient)
    out = rm_loss(PreferenceScores(chosen, rejected), loss_config(center_rewards_coefficient=coefficient))
    assert torch.allclose(out.loss.double(), expected.double(), atol=1e-6), (out.loss, expected)
    assert torch.equal(out.chosen_rewards, chosen.float()) and torch.equal(
        out.rejected_rewards, rejected.float()
    )


def test_the_reward_loss_refuses_policy_inputs_and_rpo_alpha(rm_loss):
    from swift_core.align.base import PreferenceLogps

    with pytest.raises(SwiftError, match="scores='reward'"):
        rm_loss(PreferenceLogps(chosen_logps=torch.zeros(2), rejected_logps=torch.zeros(2)), loss_config())
    with pytest.raises(SwiftError, match="rpo_alpha"):
        rm_loss(PreferenceScores(torch.zeros(2), torch.zeros(2)), loss_config(rpo_alpha=1.0))


def test_a_descriptor_declares_what_it_scores_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="scores must be one of"):
        AlignmentLossDescriptor(name="x", factory="m:X", scores="values")
    with pytest.raises(ValueError, match="no reference"):
        AlignmentLossDescriptor(name="x", factory="m:X", scores="reward", needs_reference=True)
    assert AlignmentLossDescriptor(name="x", factory="m:X").scores == "logps"


def test_lora_on_a_reward_model_trains_and_saves_the_score_head(tiny_qwen, tmp_path):
    import transformers
    from safetensors import safe_open

    from swift_core.config.options import build_arguments
    from swift_core.config.train_args import TrainArguments
    from swift_core.tuners.common import linear_module_names, peft_task_type
    from swift_core.tuners.peft_tuners import LoraTuner

    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_qwen, num_labels=1, pad_token_id=0
    )
    assert "score" not in linear_module_names(model)  # never a LoRA target
    assert peft_task_type(model) == "SEQ_CLS"
    args = build_arguments(
        TrainArguments, model=str(tiny_qwen), dataset=["x"], lora_rank=4, target_modules=["all-linear"]
    )
    peft_model = LoraTuner().apply(model, args, None)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("score" in n for n in trainable) and any("lora_A" in n for n in trainable)
    peft_model.save_pretrained(tmp_path / "a")
    with safe_open(str(tmp_path / "a" / "adapter_model.safetensors"), "pt") as f:
        saved = list(f.keys())  # noqa: SIM118 - safe_open is not iterable
    assert any("score" in key for key in saved)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _reference_scores(base: Path, adapter: Path | None, rows: list[dict]) -> list[float]:
    """A plain transformers (+ peft) reward model, one unpadded sequence at a time."""
    import transformers

    from swift_core.datasets.encode import encode_rows
    from swift_core.models.heads import REWARD
    from swift_core.models.loading import load_tokenizer, template_for

    tokenizer = load_tokenizer(str(base))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=1, pad_token_id=REWARD.pad_token_id(tokenizer)
    )
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    template = template_for("qwen2_5", tokenizer)
    out = []
    for row in rows:
        (encoded,) = encode_rows(template, tokenizer, [{"messages": row["messages"]}])
        with torch.no_grad():
            out.append(float(model(input_ids=torch.tensor([encoded.input_ids])).logits[0, 0]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["lora", "full"])
def test_rm_trains_from_the_cli_and_swift_infer_scores_like_plain_transformers(tiny_qwen, tmp_path, tuner):
    data = _write(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "out"
    r = run_swift(
        "rlhf",
        "--rlhf_type",
        "rm",
        "--model",
        str(tiny_qwen),
        "--dataset",
        str(data),
        "--tuner_type",
        tuner,
        "--max_steps",
        "3",
        "--save_steps",
        "3",
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "1e-2",
        "--logging_steps",
        "1",
        "--output_dir",
        str(out),
        "--center_rewards_coefficient",
        "0.01",
    )
    assert r.returncode == 0, r.stderr
    ckpt = next(out.glob("v*/checkpoint-3"))
    args = json.loads((ckpt / "args.json").read_text())
    assert args["mode"] == "rlhf:rm" and args["scores"] == "reward" and args["reference"] is None
    logs = [json.loads(line) for line in next(out.glob("v*/logging.jsonl")).read_text().splitlines()]
    assert any("rewards/accuracies" in entry and "rewards/margins" in entry for entry in logs)
    if tuner == "full":
        assert json.loads((ckpt / "config.json").read_text())["architectures"] == [
            "Qwen2ForSequenceClassification"
        ]

    scored = tmp_path / "scores.jsonl"
    r = run_swift("infer", "--adapters", str(ckpt), "--val_dataset", str(data), "--result_path", str(scored))
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in scored.read_text().splitlines()]
    assert [x["messages"] for x in results] == [p["messages"] for p in PAIRS]
    if tuner == "lora":
        expected_chosen = _reference_scores(tiny_qwen, ckpt, PAIRS)
        rejected_rows = [
            {"messages": [*p["messages"][:-1], {"role": "assistant", "content": p["rejected_response"]}]}
            for p in PAIRS
        ]
        expected_rejected = _reference_scores(tiny_qwen, ckpt, rejected_rows)
    else:
        expected_chosen = _reference_scores(ckpt, None, PAIRS)
        expected_rejected = None
    got = [x["score"] for x in results]
    assert max(abs(a - b) for a, b in zip(got, expected_chosen)) < 1e-4, (got[:3], expected_chosen[:3])
    if expected_rejected is not None:
        got_rejected = [x["rejected_score"] for x in results]
        assert max(abs(a - b) for a, b in zip(got_rejected, expected_rejected)) < 1e-4
    wins = sum(x["score"] > x["rejected_score"] for x in results)
    assert f"chosen scored above rejected in {wins}/{len(PAIRS)} pairs" in r.stdout

    if tuner == "lora":  # merged into the base, the head comes along and the scores stay
        merged = tmp_path / "merged"
        r = run_swift("export", "--adapters", str(ckpt), "--merge_lora", "true", "--output_dir", str(merged))
        assert r.returncode == 0, r.stderr
        assert json.loads((merged / "config.json").read_text())["architectures"] == [
            "Qwen2ForSequenceClassification"
        ]
        r = run_swift(
            "infer", "--model", str(merged), "--val_dataset", str(data), "--result_path", str(scored)
        )
        assert r.returncode == 0, r.stderr
        merged_scores = [json.loads(line)["score"] for line in scored.read_text().splitlines()]
        assert max(abs(a - b) for a, b in zip(merged_scores, got)) < 1e-4


@pytest.mark.slow
def test_reward_model_mistakes_are_clear(tiny_qwen, tmp_path):
    data = _write(tmp_path / "pairs.jsonl", PAIRS)
    r = run_swift(
        "rlhf", "--rlhf_type", "rm", "--model", str(tiny_qwen), "--dataset", str(data), "--ref_model", "x"
    )
    assert r.returncode == 2 and "--ref_model: the 'rm' loss uses no reference model" in r.stderr
    bad = _write(tmp_path / "bad.jsonl", [{"messages": PAIRS[0]["messages"]}])
    r = run_swift("rlhf", "--rlhf_type", "rm", "--model", str(tiny_qwen), "--dataset", str(bad))
    assert r.returncode == 2 and f"{bad}, line 1, field 'rejected_response'" in r.stderr
    assert "Loading weights" not in r.stderr
