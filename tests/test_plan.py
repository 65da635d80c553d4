"""`swift plan`: the memory estimate against measured peaks of CPU runs, exact LoRA parameter
counts, sharding arithmetic, and the advice.

Tolerance: the estimated training state (trainable, gradients, optimizer, activations, logits)
within 25% of the measured peak above the loaded weights (measured 0.91-1.07 on the configs the
constants were fitted on; the last config below was not used for fitting).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_swift

from swift_core.plan.arguments import parse_devices
from swift_core.plan.memory import STRATEGIES, Workload, estimate
from swift_core.plan.shape import model_shape

SMALL = dict(
    vocab_size=8192,
    hidden_size=256,
    intermediate_size=704,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    tie_word_embeddings=True,
)
OTHER = dict(
    vocab_size=4096,
    hidden_size=384,
    intermediate_size=1024,
    num_hidden_layers=3,
    num_attention_heads=6,
    num_key_value_heads=3,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
)
QWEN7B = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584,
          "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
          "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False}  # fmt: skip


def _measure(
    config, *, tuner="lora", batch, length, checkpointing=False, dropout=0.05, rank=8, chunked=False
):
    spec = {"config": config, "tuner": tuner, "batch": batch, "length": length,
            "gradient_checkpointing": checkpointing, "dropout": dropout, "rank": rank,
            "chunked_loss": chunked}  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "plan_measure.py"), json.dumps(spec)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("config", "tuner", "batch", "length", "checkpointing", "dropout", "chunked"),
    [
        (SMALL, "lora", 4, 256, False, 0.05, False),
        (SMALL, "lora", 4, 256, True, 0.05, False),
        (SMALL, "full", 4, 256, False, 0.0, False),
        (OTHER, "lora", 2, 768, True, 0.0, False),
        (SMALL, "lora", 4, 256, True, 0.05, True),
    ],
)
def test_the_estimate_matches_the_measured_peak_of_a_cpu_run(
    config, tuner, batch, length, checkpointing, dropout, chunked
):
    """`chunked`: the loss of swift sft (`swift_core.train.chunked_loss`), else full logits."""
    from transformers import Qwen2Config

    measured = _measure(
        config, tuner=tuner, batch=batch, length=length, checkpointing=checkpointing, dropout=dropout,
        chunked=chunked,
    )  # fmt: skip
    shape = model_shape(Qwen2Config(**config))
    work = Workload(tuner=tuner, lora_dropout=dropout, max_length=length, batch=batch,
                    gradient_checkpointing=checkpointing, dtype="float32", chunked_loss=chunked)  # fmt: skip
    e = estimate(shape, work, STRATEGIES["ddp"])
    assert e.trainable_params == measured["trainable"]  # LoRA parameters counted exactly, as peft makes them
    training_state = e.total - (e.weights if tuner != "full" else e.trainable)
    ratio = training_state / measured["peak_training_bytes"]
    assert 0.75 <= ratio <= 1.25, (ratio, e.parts(), measured)


def test_sharding_divides_what_each_strategy_shards_and_offload_moves_it_to_cpu():
    from transformers import Qwen2Config

    shape = model_shape(Qwen2Config(**QWEN7B))
    work = Workload(tuner="full", devices=8, max_length=1024, gradient_checkpointing=True)
    ddp, z1, z2, z3 = (estimate(shape, work, STRATEGIES[s]) for s in ("ddp", "zero1", "zero2", "zero3"))
    assert shape.total_params == pytest.approx(7.6e9, rel=0.01)
    assert z1.optimizer * 8 == pytest.approx(shape.total_params * 12)  # fp32 master + 2 moments, sharded
    assert z1.gradients == ddp.gradients and z2.gradients == pytest.approx(ddp.gradients / 8)
    assert z3.trainable == pytest.approx(ddp.trainable / 8) and z3.activations == ddp.activations
    off = estimate(shape, work, STRATEGIES["zero3_offload"])
    assert off.optimizer == 0 and off.trainable == 0 and off.cpu_offloaded > z3.optimizer
    lora = estimate(shape, Workload(quant_bits=4, max_length=1024), STRATEGIES["ddp"])
    assert lora.weights < shape.total_params * 0.8  # 4-bit linears; embeddings stay bf16
    assert lora.trainable_params == sum(8 * (i + o) for i, o in shape.linear.values())


def test_swift_plan_advises_the_cheapest_change_that_fits(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(QWEN7B))
    r = run_swift("plan", "--model", str(tmp_path), "--max_length", "4096", "--batch", "4",
                  "--devices", "4x24GiB", "--json", "true")  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert not any(s["fits"] for s in report["strategies"])  # 16k tokens per device without checkpointing
    assert report["advice"]["change"].startswith("--gradient_checkpointing true")
    assert report["advice"]["total"] <= 24 * 2**30 * 0.9
    table = run_swift("plan", "--model", str(tmp_path), "--tuner", "full", "--devices", "8x80GiB",
                      "--gradient_checkpointing", "true").stdout  # fmt: skip
    assert "zero3_offload" in table and "Fits as asked" in table


def test_bad_plan_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(Exception, match="COUNTxMEMORY"):
        parse_devices("lots")
    assert parse_devices("4x24GiB") == (4, 24 * 2**30) and parse_devices("80GB") == (1, 80e9)
    r = run_swift("plan", "--model", "Org/not-downloaded")
    assert r.returncode == 2 and "swift download" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "config.json").write_text(json.dumps(QWEN7B))
    r = run_swift("plan", "--model", str(tmp_path), "--strategies", "zero9")
    assert r.returncode == 2 and "unknown" in r.stderr
