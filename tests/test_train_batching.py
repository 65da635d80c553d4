"""How `swift sft` forms its steps (issue 20), end to end in fresh processes on a tiny model:
padded, padding-free and packed steps over the same rows give the same loss; the chunked loss
gives the model's own; token-budget batches resume bitwise after a SIGKILL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


def _rows(tmp_path: Path, n: int = 24) -> Path:
    return write_demo_rows(tmp_path / "rows.jsonl", n, seed=2)


def _sft(model, data, out, *extra, env=None):
    return run_sft(model, data, out, "--save_steps", "1000", *extra, env=env)


def _losses(out: Path) -> list[float]:
    run = next(out.glob("v*"))
    return [
        e["loss"] for e in map(json.loads, (run / "logging.jsonl").read_text().splitlines()) if "loss" in e
    ]


def test_padded_padding_free_and_packed_steps_over_the_same_rows_give_one_loss(tiny_qwen, tmp_path):
    """One step over all 24 rows (so every setting sees the same rows): the first logged loss
    of each setting equals the padded one within 1e-5 (the chunked loss on, and off)."""
    data = _rows(tmp_path)
    one_step = ("--max_steps", "1", "--per_device_train_batch_size", "24", "--max_length", "512")
    settings = {
        "padded": ("--group_by_length", "false", "--chunked_loss", "false"),
        "padded_chunked": ("--group_by_length", "false"),
        "padding_free": ("--padding_free", "true"),
        "packing": ("--packing", "true"),
    }
    loss = {}
    for name, flags in settings.items():
        r = _sft(tiny_qwen, data, tmp_path / name, *one_step, *flags)
        assert r.returncode == 0, r.stderr
        loss[name] = _losses(tmp_path / name)[0]
        assert "MB of it activations" in r.stdout
    for value in loss.values():
        assert abs(value - loss["padded"]) < 1e-5, loss


def test_token_budget_batches_resume_bitwise_after_a_sigkill(tiny_qwen, tmp_path):
    """--max_tokens_per_batch: the swift-killer plugin SIGKILLs at step 5 (two epochs of
    variable-size steps); resuming from checkpoint-4 ends with the uninterrupted run's adapter."""
    site = install_fixture(tmp_path, "swift-killer")
    data = _rows(tmp_path, 20)
    common = ("--max_steps", "8", "--save_steps", "2", "--seed", "5", "--max_tokens_per_batch", "300")
    straight = _sft(tiny_qwen, data, tmp_path / "a", *common)
    assert straight.returncode == 0, straight.stderr
    assert "batches of <= 300 tokens" in straight.stderr

    def run(out, *flags, env):
        return _sft(tiny_qwen, data, out, *common, *flags, env=env)

    kill_then_resume(run, tmp_path / "b", site, kill_at=5)
    assert_same_adapter(adapter_at(tmp_path / "a", 8), adapter_at(tmp_path / "b", 8), exact=True)
    state = json.loads((checkpoint_at(tmp_path / "a", 8) / "trainer_state.json").read_text())
    assert state["epoch"] > 1  # the budget's steps crossed an epoch boundary


@pytest.mark.parametrize("loss", ["dpo", "grpo"])
def test_rlhf_refuses_a_token_budget_it_would_ignore(tiny_qwen, tmp_path, loss):
    from swift_core.testing.datasets import write_preference_dataset

    data = write_preference_dataset(tmp_path, 8).train
    r = run_swift("rlhf", "--rlhf_type", loss, "--model", str(tiny_qwen), "--dataset", str(data),
                  "--output_dir", str(tmp_path / "o"), "--max_tokens_per_batch", "512")  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "--max_tokens_per_batch is for sft/pt" in r.stderr and "Traceback" not in r.stderr
