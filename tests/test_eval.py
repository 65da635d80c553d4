"""`swift eval` end to end on the CPU: predictions files with a known score, task files and local
benchmark copies, generation through the engine with cached predictions, the report's provenance,
bad input and an offline hub name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_swift

from swift_core.config.arguments import parse_arguments
from swift_core.config.options import with_capability_options
from swift_core.errors import SwiftError
from swift_core.eval.arguments import EvalArguments
from swift_core.testing import write_jsonl

TASK_FILES = Path(__file__).resolve().parent.parent / "swift_core" / "eval" / "task_files"


def _eval(*argv: str) -> dict:
    from swift_core.eval.runner import run_eval

    return run_eval(parse_arguments(with_capability_options(EvalArguments), list(argv)), argv=list(argv))


def _predictions(path: Path) -> Path:
    # 3 of 4 right: B (explicit), D (a parenthesised letter, index reference), wrong A for C, a choice's text
    choices = ["red", "cat", "blue", "green"]
    return write_jsonl(
        path,
        [
            {
                "id": "1",
                "prompt": "Q1",
                "prediction": "The answer is B.",
                "reference": "B",
                "choices": choices,
            },
            {"id": "2", "prompt": "Q2", "prediction": "(D)", "reference": 3, "choices": choices},
            {"id": "3", "prompt": "Q3", "prediction": "answer: a", "reference": "C", "choices": choices},
            {"id": "4", "prompt": "Q4", "prediction": "blue", "reference": "blue", "choices": choices},
        ],
    )


def test_swift_eval_scores_a_predictions_file_with_a_known_score(tmp_path):
    pred = _predictions(tmp_path / "pred.jsonl")
    out = tmp_path / "out"
    r = run_swift("eval", "--model_outputs", str(pred), "--output_dir", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "choice" in r.stdout and "0.7500" in r.stdout  # the table
    report = json.loads((out / "eval_report.json").read_text())
    (result,) = report["results"]
    assert result["metric"] == "choice" and result["score"] == 0.75 and result["n"] == 4
    assert result["dataset"]["sha256"] and result["dataset"]["path"] == str(pred.resolve())
    png = out / "pred_choice.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_swift_infer_results_and_a_metric_and_references_from_a_dataset(tmp_path):
    # swift infer --val_dataset's results: {messages, response, reference}; a failed row scores 0
    infer = write_jsonl(
        tmp_path / "infer.jsonl",
        [
            {"messages": [{"role": "user", "content": "2+2?"}], "response": "4", "reference": "4"},
            {
                "messages": [{"role": "user", "content": "3+3?"}],
                "response": "The answer is 6.",
                "reference": "6",
            },
            {
                "messages": [{"role": "user", "content": "1+1?"}],
                "response": None,
                "reference": "2",
                "error": "too long",
            },
        ],
    )
    report = _eval("--model_outputs", str(infer), "--output_dir", str(tmp_path / "a"))
    (exact,) = report["results"]
    assert (
        exact["metric"] == "exact_match" and exact["score"] == pytest.approx(1 / 3) and exact["failed"] == 1
    )
    report = _eval("--model_outputs", str(infer), "--metric", "math", "--output_dir", str(tmp_path / "b"))
    assert report["results"][0]["score"] == pytest.approx(2 / 3)

    # references from a local copy of a benchmark, predictions matched by id (rows 0 and 2 of mini_mmlu)
    preds = write_jsonl(
        tmp_path / "mmlu_pred.jsonl", [{"id": "0", "prediction": "B"}, {"id": "2", "prediction": "(A)"}]
    )
    mmlu = f"mmlu:{TASK_FILES / 'mini_mmlu.jsonl'}"
    report = _eval("--model_outputs", str(preds), "--dataset", mmlu, "--output_dir", str(tmp_path / "c"))
    (result,) = report["results"]
    assert (
        result["metric"] == "choice" and result["score"] == 0.5 and result["dataset"]["benchmark"] == "mmlu"
    )
    with pytest.raises(SwiftError, match=r"mmlu_bad.jsonl, line 1, field 'id': '99'"):
        bad = write_jsonl(tmp_path / "mmlu_bad.jsonl", [{"id": "99", "prediction": "B"}])
        _eval("--model_outputs", str(bad), "--dataset", mmlu, "--output_dir", str(tmp_path / "d"))


def test_bad_rows_name_file_line_and_field(tmp_path):
    bad = tmp_path / "task.jsonl"
    bad.write_text(
        '{"question": "q", "answer": "a"}\n{"question": "q", "choices": ["x", "y"], "answer": 5}\n'
    )
    with pytest.raises(
        SwiftError, match=r"task.jsonl, line 2, field 'answer': index 5 is outside the 2 choices"
    ):
        _eval("--model", "unused", "--dataset", str(bad), "--output_dir", str(tmp_path / "o"))
    pred = write_jsonl(tmp_path / "p.jsonl", [{"id": "1", "reference": "a"}])
    with pytest.raises(SwiftError, match=r"p.jsonl, line 1, field 'prediction': missing"):
        _eval("--model_outputs", str(pred), "--output_dir", str(tmp_path / "o"))
    with pytest.raises(SwiftError, match="unknown scorer 'acuracy'"):
        _eval("--model_outputs", str(_predictions(tmp_path / "q.jsonl")), "--metric", "acuracy")


def test_an_offline_hub_benchmark_fails_in_one_line_before_anything_heavy_loads(tmp_path):
    """Measured on this (shared, busy) machine: 1.1-1.2 s wall for the whole `swift eval` command. The check: one line,
    exit 2 (a user error), and neither datasets nor torch imported (what would make it slow)."""
    script = (
        "import sys\n"
        "from swift_core.cli.main import main\n"
        "try:\n"
        "    main(['eval', '--model', 'm', '--dataset', 'mmlu', '--output_dir', sys.argv[1]])\n"
        "except SystemExit as e:\n"
        "    print('exit', e.code, 'datasets' in sys.modules, 'torch' in sys.modules)\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.stdout.strip() == "exit 2 False False", r.stdout + r.stderr  # SwiftError: exit 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cais/mmlu" in lines[0] and "--dataset mmlu:/path" in lines[0], r.stderr


def test_a_model_answers_a_task_file_cached_and_recorded(tmp_path, tiny_qwen):
    """The tiny model generates through the transformers engine; the same command again reuses the
    predictions; the predictions file it wrote scores the same with --model_outputs."""
    task = write_jsonl(
        tmp_path / "task.jsonl",
        [
            {"id": "a", "question": "How many words are in: red cat?", "answer": "2", "task": "count"},
            {"id": "b", "question": "Is there an animal in: red blue?", "answer": "no", "task": "animal"},
        ],
    )
    mmlu = f"mmlu:{TASK_FILES / 'mini_mmlu.jsonl'}"
    out = tmp_path / "out"
    argv = [
        "--model",
        str(tiny_qwen),
        "--dataset",
        str(task),
        mmlu,
        "--max_new_tokens",
        "4",
        "--output_dir",
        str(out),
    ]
    argv += ["--few_shot", "1", "--template_options", '{"enable_thinking": false}']
    first = _eval(*argv)
    assert [r["dataset"]["name"] for r in first["results"]] == ["task", "mmlu"]
    mc = first["results"][1]
    assert mc["metric"] == "choice" and mc["n"] == 7  # 8 rows, the first one is the few-shot example
    assert mc["template"] == "qwen2_5" and mc["engine"] == "transformers" and mc["few_shot"] == 1
    assert mc["template_options"] == {"enable_thinking": False}
    assert mc["dataset"]["sha256"] and mc["dataset"]["source"] == "local"
    predictions = Path(mc["predictions"])
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 7 and all(isinstance(r["prediction"], str) for r in rows)
    # the few-shot example precedes the question as a solved turn
    assert rows[0]["messages"][-1]["content"].startswith("Which word is a colour?")
    stamp = predictions.stat().st_mtime_ns
    second = _eval(*argv)
    assert predictions.stat().st_mtime_ns == stamp  # reused, not generated again
    assert [r["score"] for r in second["results"]] == [r["score"] for r in first["results"]]
    rescored = _eval("--model_outputs", str(predictions), "--output_dir", str(tmp_path / "re"))
    assert rescored["results"][0]["score"] == mc["score"]


def test_a_local_gsm8k_copy_gets_the_math_scorer_and_matches_rows_by_position(tmp_path):
    preds = write_jsonl(
        tmp_path / "g.jsonl",
        [
            {"prediction": "3 + 4 = 7. The answer is 7."},
            {"prediction": "#### 36"},
            {"prediction": "I think 45"},  # 50 is right
            {"prediction": "$40"},
        ],
    )
    gsm8k = f"gsm8k:{TASK_FILES / 'mini_gsm8k.jsonl'}"
    (result,) = _eval("--model_outputs", str(preds), "--dataset", gsm8k, "--output_dir", str(tmp_path / "o"))[
        "results"
    ]
    assert result["metric"] == "math" and result["score"] == 0.75
    assert result["dataset"]["benchmark"] == "gsm8k" and result["dataset"]["split"] == "test"
