"""Issue 11, the data loader: non-UTF-8 files (7) and image rows (9).

Each test here failed before its fix: a non-UTF-8 byte raised a bare `UnicodeDecodeError` naming
neither file nor line (also with `skip_bad_rows`), an image row was accepted for a text-only model
and trained as the literal text `<image>`, and a 0-byte image passed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swift_core.datasets import BadRowError, load_rows
from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy


@pytest.fixture
def manager():
    return PluginManager(
        Policy(),
        [PluginSource("datasets", "swift_core.builtin.datasets", "swift-core", "0.1.0", builtin=True)],
    )


def _row(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


GOOD = json.dumps(_row("hi", "hello")).encode()
# Line 2 holds a Latin-1 "é" (0xE9): not UTF-8. Its byte offset in the file:
BAD = json.dumps(_row("caf\u00e9", "ok"), ensure_ascii=False).encode("latin-1")
LATIN1_E = b"\xe9"
BAD_OFFSET = len(GOOD) + 1 + BAD.index(LATIN1_E)


def _jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(GOOD + b"\n" + BAD + b"\n" + GOOD + b"\n")
    return path


# --- 7: non-UTF-8 files -------------------------------------------------------------------------


def test_jsonl_non_utf8_names_file_line_and_byte(tmp_path, manager):
    path = _jsonl(tmp_path)
    with pytest.raises(BadRowError) as err:
        load_rows([str(path)], manager=manager)
    text = str(err.value)
    assert str(path) in text and "line 2" in text and f"byte {BAD_OFFSET}" in text
    assert "UTF-8" in text


def test_jsonl_non_utf8_row_is_skipped_with_skip_bad_rows(tmp_path, manager):
    result = load_rows([str(_jsonl(tmp_path))], manager=manager, skip_bad_rows=True)
    assert len(result.rows) == 2
    assert [b.line for b in result.bad_rows] == [2]
    assert f"byte {BAD_OFFSET}" in result.bad_rows[0].message


def test_json_list_non_utf8_row_named_and_skippable(tmp_path, manager):
    path = tmp_path / "rows.json"
    body = b"[\n" + GOOD + b",\n" + BAD + b",\n" + GOOD + b"\n]\n"
    path.write_bytes(body)
    with pytest.raises(BadRowError) as err:
        load_rows([str(path)], manager=manager)
    assert "line 3" in str(err.value) and f"byte {body.index(LATIN1_E)}" in str(err.value)
    result = load_rows([str(path)], manager=manager, skip_bad_rows=True)
    assert len(result.rows) == 2 and [b.line for b in result.bad_rows] == [3]


def test_csv_non_utf8_row_named_and_skippable(tmp_path, manager):
    path = tmp_path / "rows.csv"
    body = b"query,response\nhi,hello\ncaf\xe9,ok\nbye,see you\n"
    path.write_bytes(body)
    with pytest.raises(BadRowError) as err:
        load_rows([str(path)], manager=manager)
    assert "line 3" in str(err.value) and f"byte {body.index(LATIN1_E)}" in str(err.value)
    result = load_rows([str(path)], manager=manager, skip_bad_rows=True)
    assert len(result.rows) == 2 and [b.line for b in result.bad_rows] == [3]


def test_rlhf_style_check_sees_non_utf8_as_a_bad_row(tmp_path, manager):
    """rlhf loads through load_rows with a row check: the decode error is still a named bad row."""
    from swift_core.align.data import paired_check

    path = tmp_path / "pairs.jsonl"
    good = json.dumps({**_row("q", "good"), "rejected_response": "bad"}).encode()
    path.write_bytes(good + b"\n" + b'{"messages": "\xff"}\n')
    with pytest.raises(BadRowError) as err:
        load_rows([str(path)], manager=manager, check=paired_check)
    assert "line 2" in str(err.value)
    result = load_rows([str(path)], manager=manager, check=paired_check, skip_bad_rows=True)
    assert len(result.rows) == 1


@pytest.mark.slow
def test_data_preview_reports_non_utf8(tmp_path, tiny_qwen):
    from helpers import run_swift

    path = _jsonl(tmp_path)
    r = run_swift("data", "preview", "--model", str(tiny_qwen), "--dataset", str(path))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "line 2" in r.stderr and "UTF-8" in r.stderr
    r = run_swift(
        "data", "preview", "--model", str(tiny_qwen), "--dataset", str(path), "--skip_bad_rows", "true"
    )
    assert r.returncode == 0, r.stderr
    assert "skipped 1 bad row" in r.stderr


# --- 9: image rows ------------------------------------------------------------------------------


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (4, 4), (255, 0, 0)).save(path)
    return path


def _image_rows(tmp_path: Path, image: str) -> Path:
    path = tmp_path / "vqa.jsonl"
    row = {**_row("<image>what is it?", "red"), "images": [image]}
    path.write_text(json.dumps(_row("plain", "text")) + "\n" + json.dumps(row) + "\n")
    return path


def test_image_rows_refused_for_a_text_only_model(tmp_path, manager):
    data = _image_rows(tmp_path, str(_png(tmp_path / "red.png")))
    with pytest.raises(BadRowError) as err:
        load_rows([str(data)], manager=manager, modalities=("text",))
    text = str(err.value)
    assert str(data) in text and "line 2" in text and "'images'" in text and "text" in text


def test_a_family_declares_what_it_takes():
    from swift_core.descriptors import ModelFamily

    assert ModelFamily(name="t").modalities == ("text",)
    assert "image" in ModelFamily(name="v", modalities=("text", "image")).modalities


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_empty_or_undecodable_image_refused_when_the_row_is_checked(tmp_path, manager, content):
    broken = tmp_path / "broken.png"
    broken.write_bytes(content)
    data = _image_rows(tmp_path, str(broken))
    with pytest.raises(BadRowError) as err:
        load_rows([str(data)], manager=manager, modalities=("text", "image"))
    assert "line 2" in str(err.value) and "images[0]" in str(err.value)
    assert ("0 bytes" if not content else "cannot decode") in str(err.value)
    good = _image_rows(tmp_path, str(_png(tmp_path / "red.png")))
    assert len(load_rows([str(good)], manager=manager, modalities=("text", "image")).rows) == 2


@pytest.mark.slow
def test_sft_refuses_image_rows_on_a_text_only_family(tmp_path, tiny_qwen):
    from helpers import run_swift

    data = _image_rows(tmp_path, str(_png(tmp_path / "red.png")))
    r = run_swift(
        "sft", "--model", str(tiny_qwen), "--dataset", str(data), "--output_dir", str(tmp_path / "o")
    )
    assert r.returncode == 2, r.stderr
    assert "line 2" in r.stderr and "images" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
