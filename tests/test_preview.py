"""`swift data preview` on a tiny model, as users run it."""

import json

from helpers import run_swift


def _data(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": "Reverse the word cat."},
                {"role": "assistant", "content": "tac"},
            ]
        },
        {"instruction": "Add the numbers", "input": "2 and 3", "output": "5"},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello there"}]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_preview_json_gives_ids_labels_and_text(tiny_qwen, tmp_path):
    out = run_swift(
        "data", "preview", "--model", str(tiny_qwen), "--dataset", str(_data(tmp_path)), "--n", "3", "--json"
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 3
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    for row, answer in zip(rows, ["tac", "5", "hello there"]):
        assert row["template"] == "qwen2_5" and row["family"] == "qwen2_5"
        assert len(row["input_ids"]) == len(row["labels"]) == row["num_tokens"]
        trained = tok.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
        assert trained == answer + "<|im_end|>"
        assert row["text"] == tok.decode(row["input_ids"])


def test_preview_text_marks_trained_parts_and_pt_mode_trains_all(tiny_qwen, tmp_path):
    data = str(_data(tmp_path))
    out = run_swift("data", "preview", "--model", str(tiny_qwen), "--dataset", data, "--n", "1")
    assert out.returncode == 0, out.stderr
    assert "⟦tac<|im_end|>⟧" in out.stdout and "tokens, 3 trained" in out.stdout
    pt = run_swift(
        "data", "preview", "--model", str(tiny_qwen), "--dataset", data, "--n", "1", "--mode", "pt", "--json"
    )
    row = json.loads(pt.stdout.splitlines()[0])
    assert row["labels"] == row["input_ids"]


def test_preview_errors_name_file_line_and_field(tiny_qwen, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n{"instruction": 5}\n'
    )
    out = run_swift("data", "preview", "--model", str(tiny_qwen), "--dataset", str(bad))
    assert out.returncode == 2
    assert f"{bad}, line 2" in out.stderr and "Traceback" not in out.stderr
    skipped = run_swift(
        "data", "preview", "--model", str(tiny_qwen), "--dataset", str(bad), "--skip_bad_rows", "--json"
    )
    assert skipped.returncode == 0, skipped.stderr
    assert len(skipped.stdout.splitlines()) == 1


def test_preview_unknown_names_suggest_the_nearest(tiny_qwen, tmp_path):
    data = str(_data(tmp_path))
    out = run_swift("data", "preview", "--model", str(tiny_qwen), "--dataset", data, "--template", "qwen25")
    assert out.returncode == 2 and "Did you mean 'qwen2_5'" in out.stderr
    out = run_swift("data", "preview", "--model", "qwen2.5-7b-instrukt", "--dataset", data)
    assert out.returncode == 2 and "qwen2_5-7b-instruct" in out.stderr
    out = run_swift("data", "preview", "--model", str(tiny_qwen), "--dataset", "alpaca-enn")
    assert out.returncode == 2 and "alpaca-en" in out.stderr
