"""`swift eval --eval_backend lm-eval`: lm-evaluation-harness scores a model that `swift deploy`
serves, and its accuracy is the one the model's own log-likelihoods give.

lm-eval 0.4.13 lives in a venv of its own (`make setup-lmeval`: its pytablewriter pins
python-dateutil < 3, below the main environment's 4.0). The test is skipped where that venv is
missing. Its task is Swift's own `swift_mini_mc` (8 multiple-choice rows, shipped in
swift_core/eval/task_files/lm_eval), scored through `local-completions`: echo + logprobs from the
server. The expected accuracy is computed here with transformers on the same tokens (lm-eval's
context/continuation split: continuation = tokens of "context + ' ' + choice" after the context's).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import REPO, run_swift

pytestmark = pytest.mark.slow

LM_EVAL_PYTHON = os.environ.get("SWIFT_LM_EVAL_PYTHON") or str(REPO / ".venv-lmeval" / "bin" / "python")
TASK = REPO / "swift_core" / "eval" / "task_files" / "lm_eval" / "swift_mini.jsonl"


def _expected_accuracy(model_dir: Path) -> float:
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    right = 0
    rows = [json.loads(line) for line in TASK.read_text().splitlines()]
    for row in rows:
        context = f"Question: {row['question']}\nAnswer:"
        context_ids = tokenizer.encode(context, add_special_tokens=False)
        scores = []
        for choice in row["choices"]:
            whole = tokenizer.encode(f"{context} {choice}", add_special_tokens=False)
            continuation = whole[len(context_ids) :]
            with torch.no_grad():
                logits = model(torch.tensor([whole])).logits[0].log_softmax(-1)
            start = len(whole) - len(continuation)
            scores.append(sum(float(logits[start + i - 1, t]) for i, t in enumerate(continuation)))
        right += int(max(range(len(scores)), key=scores.__getitem__) == row["answer"])
    return right / len(rows)


@pytest.mark.skipif(not Path(LM_EVAL_PYTHON).is_file(), reason="no lm-eval venv: run make setup-lmeval")
def test_lm_eval_backend_scores_a_model_served_by_swift_deploy(tiny_qwen, tmp_path):
    out = tmp_path / "eval"
    r = run_swift(
        "eval",
        "--eval_backend",
        "lm-eval",
        "--model",
        str(tiny_qwen),
        "--dataset",
        "swift_mini_mc",
        "--lm_eval_python",
        LM_EVAL_PYTHON,
        "--device",
        "cpu",
        "--output_dir",
        str(out),
        env={"HF_DATASETS_OFFLINE": "1"},
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (result,) = json.loads((out / "eval_report.json").read_text())["results"]
    assert result["backend"] == "lm-eval 0.4.13" and result["lm_eval_model"] == "local-completions"
    assert result["metric"] == "acc" and result["n"] == 8
    assert result["chat_template_applied"] is False and result["template"] == "qwen2_5"
    assert result["dataset"]["sha256"] and result["dataset"]["files"] == [str(TASK)]
    assert result["score"] == pytest.approx(_expected_accuracy(tiny_qwen))
