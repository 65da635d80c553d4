"""`swift infer`: batch mode, interactive mode (stdin), a training checkpoint as --adapters."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from swift_core.engines.protocol import GenerationRequest, GenerationResponse, InferenceEngine

ROWS = [
    {
        "messages": [
            {"role": "user", "content": f"what is {i} plus {i}?"},
            {"role": "assistant", "content": str(2 * i)},
        ]
    }
    for i in range(5)
]


def write_rows(path: Path, rows=ROWS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_cmd(command: str, *args: str, stdin: str | None = None, cwd: Path | None = None):
    code = f"from swift_core.cli.{command}_cmd import {command}; {command}.main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_batch_mode_writes_one_result_per_row_and_a_summary(tiny_qwen, tmp_path):
    data = write_rows(tmp_path / "val.jsonl")
    out = tmp_path / "results.jsonl"
    r = run_cmd(
        "infer",
        "--model",
        str(tiny_qwen),
        "--val_dataset",
        str(data),
        "--result_path",
        str(out),
        "--max_new_tokens",
        "6",
        "--infer_backend",
        "pt",
    )
    assert r.returncode == 0, r.stderr
    results = read_jsonl(out)
    assert len(results) == len(ROWS)
    for row, result in zip(ROWS, results):
        assert result["messages"] == row["messages"][:-1]  # the reference is not in the prompt
        assert result["reference"] == row["messages"][-1]["content"]
        assert isinstance(result["response"], str) and result["completion_tokens"] <= 6
    summary = [line for line in r.stdout.splitlines() if line.startswith("infer: ")]
    assert len(summary) == 1 and "5 rows (0 failed)" in summary[0] and "tokens/s" in summary[0]
    assert str(out) in summary[0]
    assert "infer:" in r.stderr and "5/5" in r.stderr  # the tqdm bar


@pytest.mark.slow
def test_interactive_mode_reads_stdin_and_exits_0(tiny_qwen, tmp_path):
    r = run_cmd(
        "infer",
        "--model",
        str(tiny_qwen),
        "--max_new_tokens",
        "5",
        stdin="hello\n/clear\nhi\n/exit\nnever read\n",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(">>> ") == 2 and "(history cleared)" in r.stdout
    assert r.stdout.count("<<< ") == 4  # the /exit prompt is the last one
    assert "/clear" in r.stderr  # the banner names the commands


class RecordingEngine(InferenceEngine):
    """Answers "ok N" and keeps the requests it got."""

    def __init__(self):
        self.requests: list[GenerationRequest] = []
        self.closed = False
        self.model_name = "fake"

    async def generate(self, request):
        from swift_core.engines.protocol import Choice

        self.requests.append(request)
        return GenerationResponse([Choice(0, f"ok {len(self.requests)}", "stop")], 1, 1)

    async def close(self):
        self.closed = True


def test_interactive_mode_keeps_the_history_until_clear(capsys):
    from swift_core.infer.arguments import InferArguments
    from swift_core.infer.run import run_interactive

    engine = RecordingEngine()
    run_interactive(
        engine, InferArguments(model="x", system="be brief"), io.StringIO("one\ntwo\n/clear\nthree\n")
    )
    roles = [[(m["role"], m["content"]) for m in r.messages] for r in engine.requests]
    assert roles[0] == [("system", "be brief"), ("user", "one")]
    assert roles[1] == [("system", "be brief"), ("user", "one"), ("assistant", "ok 1"), ("user", "two")]
    assert roles[2] == [("system", "be brief"), ("user", "three")]
    assert engine.closed  # end of input quits cleanly
    assert capsys.readouterr().out.count("ok ") == 3


@pytest.fixture(scope="module")
def lora_checkpoint(tiny_qwen, tmp_path_factory) -> Path:
    from swift_core.config.options import build_arguments
    from swift_core.config.train_args import TrainArguments
    from swift_core.train.pipeline import run_train

    root = tmp_path_factory.mktemp("train")
    data = write_rows(root / "train.jsonl", ROWS * 4)
    args = build_arguments(
        TrainArguments,
        model=str(tiny_qwen),
        dataset=[str(data)],
        max_steps=2,
        save_steps=2,
        learning_rate=5e-2,
        lora_dropout=0.0,
        output_dir=str(root / "out"),
    )
    result = run_train(args)
    assert result.last_checkpoint is not None
    return result.last_checkpoint


@pytest.mark.slow
def test_adapters_checkpoint_answers_like_plain_peft_and_writes_next_to_it(
    tiny_qwen, lora_checkpoint, tmp_path
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from swift_core.datasets.encode import encode_prompt
    from swift_core.models.loading import template_for

    data = write_rows(tmp_path / "val.jsonl", ROWS[:2])
    r = run_cmd(
        "infer", "--adapters", str(lora_checkpoint), "--val_dataset", str(data), "--max_new_tokens", "8"
    )
    assert r.returncode == 0, r.stderr
    written = list((lora_checkpoint / "infer_result").glob("*.jsonl"))
    assert len(written) == 1
    results = read_jsonl(written[0])
    assert len(results) == 2

    tokenizer = AutoTokenizer.from_pretrained(lora_checkpoint)
    template = template_for("qwen2_5", tokenizer)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_qwen), lora_checkpoint).eval()
    ids = encode_prompt(template, tokenizer, ROWS[0]["messages"][:-1])
    stops = [tokenizer.convert_tokens_to_ids(t) for t in template.stop]

    def greedy(m):
        with torch.no_grad():
            out = m.generate(
                input_ids=torch.tensor([ids]),
                max_new_tokens=8,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=stops[0],
            )[0, len(ids) :].tolist()
        return tokenizer.decode(out[: next((i for i, t in enumerate(out) if t in stops), len(out))])

    assert results[0]["response"] == greedy(model)
    with model.disable_adapter():
        assert results[0]["response"] != greedy(model)  # the trained adapter was on


@pytest.mark.slow
def test_unknown_engine_and_missing_model_are_clear_errors(tmp_path):
    r = run_cmd(
        "infer", "--model", "x", "--engine", "nope", "--val_dataset", str(write_rows(tmp_path / "v.jsonl"))
    )
    assert r.returncode != 0 and "transformers" in r.stderr
    r = run_cmd("infer", "--val_dataset", str(write_rows(tmp_path / "v.jsonl")))
    assert r.returncode != 0 and "--adapters" in r.stderr


def test_the_engine_is_a_registered_plugin():
    from swift_core.plugins import get_plugin_manager

    manager = get_plugin_manager()
    descriptor = manager.get("engines", "pt")
    assert descriptor.name == "transformers" and descriptor.plugin == "engines"
    assert manager.get("engines", "hf") is descriptor


def test_generate_batch_runs_requests_together():
    engine = RecordingEngine()
    out = engine.generate_batch([GenerationRequest(messages=[{"role": "user", "content": "x"}])] * 3)
    assert [o.choices[0].text for o in out] == ["ok 1", "ok 2", "ok 3"]
    asyncio.run(engine.close())


def test_batch_mode_answers_prompt_only_rows(tmp_path, monkeypatch, capsys):
    """Rows without an answer (the usual shape of an evaluation set) are prompts, not bad rows."""
    from swift_core.infer import run as infer_run
    from swift_core.infer.arguments import InferArguments

    engine = RecordingEngine()
    monkeypatch.setattr(infer_run, "build_engine", lambda args, manager: engine)
    data = write_rows(
        tmp_path / "prompts.jsonl",
        [{"query": "hi"}, {"instruction": "add", "input": "1 1"}, *ROWS[:1]],
    )
    out = tmp_path / "out.jsonl"
    infer_run.run_infer(InferArguments(model="x", val_dataset=[str(data)], result_path=str(out)))
    results = read_jsonl(out)
    assert [r["messages"][-1]["content"] for r in results] == ["hi", "add\n1 1", "what is 0 plus 0?"]
    assert [r["reference"] for r in results] == [None, None, "0"]
    assert all(r["response"].startswith("ok ") for r in results)
    assert "3 rows (0 failed)" in capsys.readouterr().out


class InterruptedEngine(RecordingEngine):
    """Answers rows in order, one every few milliseconds; on row `stop_at` the process gets
    SIGINT, as from Ctrl-C (asyncio.run turns it into KeyboardInterrupt after cancelling)."""

    def __init__(self, stop_at: int | None = None):
        super().__init__()
        self.stop_at = stop_at

    async def generate(self, request):
        index = int(request.messages[-1]["content"].split()[2])  # "what is I plus I?"
        await asyncio.sleep(0.02 * index)
        if self.stop_at is not None and index == self.stop_at:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(30)  # cancelled by asyncio's SIGINT handler
        return await super().generate(request)


def test_batch_mode_resumes_after_an_interruption(tmp_path, monkeypatch, capsys):
    """Rows answered before Ctrl-C are kept in a hidden partial file (no results file yet); the
    same command answers only the rest, and the results are complete and in order."""
    from swift_core.infer import run as infer_run
    from swift_core.infer.arguments import InferArguments
    from swift_core.infer.partial_results import partial_path

    rows = [
        {
            "messages": [
                {"role": "user", "content": f"what is {i} plus {i}?"},
                {"role": "assistant", "content": "x"},
            ]
        }
        for i in range(8)
    ]
    data = write_rows(tmp_path / "rows.jsonl", rows)
    out = tmp_path / "out.jsonl"
    args = InferArguments(model="x", val_dataset=[str(data)], result_path=str(out))

    first = InterruptedEngine(stop_at=5)
    monkeypatch.setattr(infer_run, "build_engine", lambda a, m: first)
    with pytest.raises(KeyboardInterrupt):
        infer_run.run_infer(args)
    assert not out.exists()  # nothing half-written looks finished
    kept = partial_path(out).read_text().splitlines()
    assert len(kept) - 1 == 5  # a header, then rows 0-4
    assert "5 of 8 rows kept" in capsys.readouterr().err

    second = InterruptedEngine()
    monkeypatch.setattr(infer_run, "build_engine", lambda a, m: second)
    infer_run.run_infer(args)
    asked = sorted(int(r.messages[-1]["content"].split()[2]) for r in second.requests)
    assert asked == [5, 6, 7]
    results = read_jsonl(out)
    assert [r["messages"][-1]["content"] for r in results] == [f"what is {i} plus {i}?" for i in range(8)]
    assert all(r["response"].startswith("ok ") for r in results)
    assert not partial_path(out).exists()
    captured = capsys.readouterr()
    assert "resuming: 5 of 8 rows already answered" in captured.err
    assert "5 kept from the interrupted run" in captured.out

    # Other settings: the partial file of a different run is not reused.
    third = InterruptedEngine(stop_at=2)
    monkeypatch.setattr(infer_run, "build_engine", lambda a, m: third)
    with pytest.raises(KeyboardInterrupt):
        infer_run.run_infer(args)
    fourth = InterruptedEngine()
    monkeypatch.setattr(infer_run, "build_engine", lambda a, m: fourth)
    changed = InferArguments(model="x", val_dataset=[str(data)], result_path=str(out), temperature=0.7)
    infer_run.run_infer(changed)
    assert len(fourth.requests) == 8
    assert "from other rows or settings" in capsys.readouterr().err
