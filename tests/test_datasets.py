"""Datasets: every row format to the internal form, file/folder/hub loading, sampling, bad rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from helpers import REPO

from swift_core.datasets import BadRowError, RowError, convert_row, detect_format, load_rows
from swift_core.datasets.loader import sample_indices
from swift_core.descriptors import DatasetDescriptor
from swift_core.errors import SwiftError, UnknownNameError
from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy

# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def manager():
    return PluginManager(
        Policy(),
        [PluginSource("datasets", "swift_core.builtin.datasets", "swift-core", "0.1.0", builtin=True)],
    )


def U(text):
    return {"role": "user", "content": text}


def A(text, **extra):
    return {"role": "assistant", "content": text, **extra}


def S(text):
    return {"role": "system", "content": text}


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def qa(i: int) -> dict:
    return {"query": f"q{i}", "response": f"a{i}"}


def bad_row_error(path: str, manager) -> str:
    with pytest.raises(BadRowError) as info:
        load_rows([path], manager=manager)
    return str(info.value)


# --- formats: each one to the exact internal form ------------------------------------------------


def test_messages_format_keeps_tools_tool_calls_and_loss():
    call = {"type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    row = {
        "id": 7,
        "tools": tools,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "content": "18C"},
            {"role": "assistant", "content": "18C and sunny.", "loss": True},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": "You're welcome.", "loss": False},
        ],
    }
    assert detect_format(row) == "messages"
    assert convert_row(row) == {
        "messages": [
            S("Be brief."),
            U("Weather in Paris?"),
            A("", tool_calls=[call]),
            {"role": "tool", "content": "18C"},
            A("18C and sunny.", loss=True),
            U("Thanks"),
            A("You're welcome.", loss=False),
        ],
        "tools": tools,
    }


def test_messages_multimodal_content_lists_become_image_tags(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "cat.png").write_bytes(b"png")
    row = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "img/cat.png"}},
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg"}},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "A cat and a dog."}]},
        ]
    }
    assert convert_row(row, base_dir=str(tmp_path)) == {
        "messages": [U("<image>What is this?<image>"), A("A cat and a dog.")],
        "images": [str(tmp_path / "img" / "cat.png"), "https://example.com/dog.jpg"],
    }


def test_sharegpt_with_system_function_call_and_observation():
    row = {
        "system": "You can call tools.",
        "tools": '[{"name": "add", "parameters": {"type": "object"}}]',
        "conversations": [
            {"from": "human", "value": "1+2?"},
            {"from": "function_call", "value": '{"name": "add", "arguments": {"a": 1, "b": 2}}'},
            {"from": "observation", "value": "3"},
            {"from": "gpt", "value": "It is 3."},
            {"from": "user", "value": "And 2+2?"},
            {"from": "model", "value": "4."},
        ],
    }
    assert detect_format(row) == "sharegpt"
    assert convert_row(row) == {
        "messages": [
            S("You can call tools."),
            U("1+2?"),
            A(
                "",
                tool_calls=[{"type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}],
            ),
            {"role": "tool", "content": "3"},
            A("It is 3."),
            U("And 2+2?"),
            A("4."),
        ],
        "tools": [{"name": "add", "parameters": {"type": "object"}}],
    }


def test_sharegpt_text_then_function_call_is_one_assistant_turn():
    row = {
        "conversations": [
            {"from": "human", "value": "Time?"},
            {"from": "gpt", "value": "Let me check."},
            {"from": "function_call", "value": '{"name": "now", "arguments": "{}"}'},
            {"from": "function", "value": "12:00"},
            {"from": "assistant", "value": "Noon."},
        ]
    }
    call = {"type": "function", "function": {"name": "now", "arguments": "{}"}}
    assert convert_row(row)["messages"] == [
        U("Time?"),
        A("Let me check.", tool_calls=[call]),
        {"role": "tool", "content": "12:00"},
        A("Noon."),
    ]


def test_alpaca_with_input_system_and_history():
    row = {
        "system": "You translate.",
        "history": [["Say hi", "Hi"]],
        "instruction": "Translate to French",
        "input": "Good morning",
        "output": "Bonjour",
    }
    assert detect_format(row) == "alpaca"
    assert convert_row(row) == {
        "messages": [
            S("You translate."),
            U("Say hi"),
            A("Hi"),
            U("Translate to French\nGood morning"),
            A("Bonjour"),
        ]
    }


def test_alpaca_empty_input_and_system_are_skipped():
    row = {"instruction": "Name a color", "input": "", "system": "", "output": "Blue"}
    assert convert_row(row) == {"messages": [U("Name a color"), A("Blue")]}


def test_query_response_with_history_and_system():
    row = {"system": "S", "history": [["q1", "a1"], ["q2", "a2"]], "query": "q3", "response": "a3"}
    assert detect_format(row) == "query-response"
    assert convert_row(row) == {"messages": [S("S"), U("q1"), A("a1"), U("q2"), A("a2"), U("q3"), A("a3")]}


def test_prompt_completion_strings_and_message_lists():
    assert detect_format({"prompt": "p", "completion": "c"}) == "prompt-completion"
    assert convert_row({"prompt": "2+2=", "completion": "4"}) == {"messages": [U("2+2="), A("4")]}
    row = {
        "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Hello"}],
    }
    assert convert_row(row) == {"messages": [S("S"), U("Hi"), A("Hello")]}


def test_preference_strings_with_prompt_query_or_instruction():
    assert convert_row({"prompt": "Q", "chosen": "good", "rejected": "bad"}) == {
        "messages": [U("Q"), A("good")],
        "rejected_response": "bad",
    }
    assert convert_row({"system": "S", "query": "Q", "chosen": "good", "rejected": "bad"}) == {
        "messages": [S("S"), U("Q"), A("good")],
        "rejected_response": "bad",
    }
    assert convert_row({"instruction": "I", "input": "x", "chosen": "good", "rejected": "bad"}) == {
        "messages": [U("I\nx"), A("good")],
        "rejected_response": "bad",
    }


def test_preference_full_message_lists_ultrafeedback_style():
    prompt = [U("Hi"), A("Hello!"), U("Tell a joke")]
    row = {
        "prompt": "Tell a joke",
        "messages": [*prompt, A("A funny one")],
        "chosen": [*prompt, A("A funny one")],
        "rejected": [*prompt, A("No.")],
        "score_chosen": 8.0,
    }
    assert detect_format(row) == "preference"
    assert convert_row(row) == {"messages": [*prompt, A("A funny one")], "rejected_response": "No."}


def test_preference_explicit_prompt_with_assistant_only_sides():
    row = {"prompt": [U("Q")], "chosen": [A("good")], "rejected": [A("bad")]}
    assert convert_row(row) == {"messages": [U("Q"), A("good")], "rejected_response": "bad"}


def test_preference_sharegpt_prompt_with_single_message_sides():
    row = {
        "conversations": [{"from": "human", "value": "Q"}],
        "chosen": {"from": "gpt", "value": "good"},
        "rejected": {"from": "gpt", "value": "bad"},
    }
    assert convert_row(row) == {"messages": [U("Q"), A("good")], "rejected_response": "bad"}


def test_preference_anthropic_hh_rlhf_text():
    shared = "\n\nHuman: Hi there\n\nAssistant: Hello, how can I help?\n\nHuman: Tell me a joke"
    row = {
        "chosen": shared + "\n\nAssistant: Why did the chicken cross the road?",
        "rejected": shared + "\n\nAssistant: No.",
    }
    assert convert_row(row) == {
        "messages": [
            U("Hi there"),
            A("Hello, how can I help?"),
            U("Tell me a joke"),
            A("Why did the chicken cross the road?"),
        ],
        "rejected_response": "No.",
    }


def test_rejected_response_next_to_an_sft_format():
    row = {"instruction": "I", "output": "good", "rejected_response": "bad"}
    assert convert_row(row) == {"messages": [U("I"), A("good")], "rejected_response": "bad"}


def test_rejected_messages_next_to_messages():
    row = {
        "system": "S",
        "messages": [U("Q"), A("good")],
        "rejected_messages": [U("Q"), A("bad")],
    }
    assert convert_row(row) == {"messages": [S("S"), U("Q"), A("good")], "rejected_response": "bad"}


@pytest.mark.parametrize(
    ("label", "expected"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False)],
)
def test_kto_label_forms(label, expected):
    row = {"prompt": [U("Q")], "completion": [A("answer")], "label": label}
    assert convert_row(row) == {"messages": [U("Q"), A("answer")], "label": expected}
    row = {"messages": [U("Q"), A("answer")], "label": label}
    assert convert_row(row) == {"messages": [U("Q"), A("answer")], "label": expected}


def test_kto_bad_label_is_a_row_error():
    with pytest.raises(RowError) as info:
        convert_row({"messages": [U("Q"), A("answer")], "label": "maybe"})
    assert info.value.field == "label"


def test_images_string_objects_and_tags(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"jpg")
    objects = {"ref": ["cat"], "bbox": [[1, 2, 3, 4]]}
    row = {"query": "<image>Where is the cat?", "response": "Here.", "images": "a.jpg", "objects": objects}
    assert convert_row(row, base_dir=str(tmp_path)) == {
        "messages": [U("<image>Where is the cat?"), A("Here.")],
        "images": [str(tmp_path / "a.jpg")],
        "objects": objects,
    }
    absolute = {"messages": [U("<image>x"), A("y")], "images": [str(tmp_path / "a.jpg")]}
    assert convert_row(absolute)["images"] == [str(tmp_path / "a.jpg")]


def test_image_tag_count_must_match_images(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"jpg")
    with pytest.raises(RowError) as info:
        convert_row({"query": "<image><image>Two?", "response": "One.", "images": ["a.jpg"]}, str(tmp_path))
    assert info.value.field == "images"
    assert "2 <image> tag(s) but the row has 1 image(s)" in info.value.message


def test_missing_image_file_is_a_row_error(tmp_path):
    with pytest.raises(RowError) as info:
        convert_row({"query": "q", "response": "r", "images": ["nope.png"]}, str(tmp_path))
    assert info.value.field == "images[0]"
    assert "not found" in info.value.message


def test_unknown_format_names_keys_and_accepted_formats():
    with pytest.raises(RowError) as info:
        convert_row({"body": "hello", "meta": 1})
    message = str(info.value)
    assert "'body', 'meta'" in message
    for name in ("messages", "sharegpt", "alpaca", "query-response", "prompt-completion", "preference"):
        assert name in message


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ({"messages": [U("a"), U("b")]}, "messages[1].role", "expected 'assistant'"),
        ({"messages": [U("a"), A("b"), S("c"), A("d")]}, "messages[2].role", "only allowed first"),
        ({"messages": [A("hi"), U("a")]}, "messages[0].role", "expected 'user'"),
        ({"messages": [U("a")]}, "messages", "must end with an assistant message"),
        ({"messages": [U("a"), {"role": "bot", "content": "b"}]}, "messages[1].role", "unknown role"),
        ({"messages": [U("a"), {"role": "assistant"}]}, "messages[1].content", "missing"),
        (
            {"messages": [U("a"), A("ok"), {"role": "tool", "content": "x"}]},
            "messages[2].role",
            "expected 'user'",
        ),
        ({"messages": "hi"}, "messages", "expected a list of messages, got string"),
        ({"conversations": [{"from": "alien", "value": "x"}]}, "conversations[0].from", "unknown speaker"),
        ({"instruction": "I"}, "output", "missing"),
        ({"instruction": "I", "output": ""}, "output", "empty"),
        ({"query": 3, "response": "r"}, "query", "expected a string, got number"),
        ({"query": "q", "response": "r", "history": [["only one"]]}, "history[0]", "pair"),
        ({"prompt": "p", "chosen": "good"}, "rejected", "missing"),
        ({"prompt": "p", "chosen": "", "rejected": "bad"}, "chosen", "empty"),
        ({"prompt": "p", "chosen": [], "rejected": [A("bad")]}, "chosen", "empty list"),
        ({"chosen": "good", "rejected": "bad"}, "prompt", "need a 'prompt'"),
        ({"messages": [U("a"), A("b")], "rejected_response": ""}, "rejected_response", "empty"),
    ],
)
def test_row_errors_name_the_field(row, field, fragment):
    with pytest.raises(RowError) as info:
        convert_row(row)
    assert info.value.field == field
    assert fragment in info.value.message


def test_rejected_messages_must_share_the_prompt():
    row = {"messages": [U("Q"), A("good")], "rejected_messages": [U("other question"), A("bad")]}
    with pytest.raises(RowError) as info:
        convert_row(row)
    assert info.value.field == "rejected_messages"
    assert "must share everything before the final assistant turn" in info.value.message


def test_hh_rlhf_sides_that_differ_before_the_last_turn_are_rejected():
    row = {"chosen": "\n\nHuman: A\n\nAssistant: x", "rejected": "\n\nHuman: B\n\nAssistant: y"}
    with pytest.raises(RowError) as info:
        convert_row(row)
    assert info.value.field == "rejected"


# --- loading files and folders ------------------------------------------------------------------


def test_jsonl_loading_skips_blank_lines(tmp_path, manager):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(qa(1)) + "\n\n   \n" + json.dumps(qa(2)) + "\n")
    result = load_rows([str(path)], manager=manager)
    assert result.rows == [{"messages": [U("q1"), A("a1")]}, {"messages": [U("q2"), A("a2")]}]
    assert result.bad_rows == []
    assert [(s.kind, s.rows) for s in result.sources] == [("file", 2)]


def test_json_list_and_object_with_data(tmp_path, manager):
    (tmp_path / "list.json").write_text(json.dumps([qa(1), qa(2)], indent=2))
    (tmp_path / "obj.json").write_text(json.dumps({"version": 1, "data": [qa(3)]}, indent=2))
    result = load_rows([str(tmp_path / "list.json"), str(tmp_path / "obj.json")], manager=manager)
    assert [r["messages"][0]["content"] for r in result.rows] == ["q1", "q2", "q3"]


def test_json_bad_item_reports_the_line_where_it_starts(tmp_path, manager):
    text = '{\n  "meta": {"n": 2},\n  "rows": [\n    {"query": "q", "response": "r"},\n    {"query": "q",\n     "response": null}\n  ]\n}\n'
    (tmp_path / "d.json").write_text(text)
    message = bad_row_error(str(tmp_path / "d.json"), manager)
    assert message == f"{tmp_path / 'd.json'}, line 5, field 'response': expected a string, got null"


def test_invalid_json_file_names_the_line(tmp_path, manager):
    (tmp_path / "broken.json").write_text('[\n  {"query": "q", "response": "r"},\n  {"query": \n]\n')
    with pytest.raises(SwiftError) as info:
        load_rows([str(tmp_path / "broken.json")], manager=manager)
    assert f"{tmp_path / 'broken.json'}, line 4: invalid JSON" in str(info.value)


def test_csv_loading_with_json_fields_and_labels(tmp_path, manager):
    path = tmp_path / "kto.csv"
    path.write_text(
        'query,response,history,label\nq1,"a1, with a comma",,true\n"multi\nline",a2,"[[""h"", ""i""]]",0\n'
    )
    result = load_rows([str(path)], manager=manager)
    assert result.rows == [
        {"messages": [U("q1"), A("a1, with a comma")], "label": True},
        {"messages": [U("h"), A("i"), U("multi\nline"), A("a2")], "label": False},
    ]


def test_csv_bad_row_line_counts_the_header_as_line_1(tmp_path, manager):
    path = tmp_path / "d.csv"
    path.write_text('instruction,output\n"I1\ntwo lines",O1\n\n"I2\nmore",\n')
    assert (
        bad_row_error(str(path), manager)
        == f"{path}, line 5, field 'output': empty: the final answer has no text"
    )


def test_parquet_loading_and_row_numbers(tmp_path, manager):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "messages": [
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                [{"role": "user", "content": "bye"}, {"role": "assistant", "content": None}],
            ]
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    message = bad_row_error(str(tmp_path / "d.parquet"), manager)
    assert (
        message
        == f"{tmp_path / 'd.parquet'}, row 2, field 'messages[1].content': expected a string, got null"
    )
    result = load_rows([str(tmp_path / "d.parquet")], skip_bad_rows=True, manager=manager)
    assert result.rows == [{"messages": [U("hi"), A("hello")]}]


def test_folder_loads_every_supported_file_sorted(tmp_path, manager):
    folder = tmp_path / "data"
    write_jsonl(folder / "b.jsonl", [qa(2)])
    (folder / "a.json").write_text(json.dumps([qa(1)]))
    (folder / "c.csv").write_text("query,response\nq3,a3\n")
    (folder / "notes.txt").write_text("not data")
    (folder / "sub").mkdir()
    write_jsonl(folder / "sub" / "z.jsonl", [qa(9)])
    result = load_rows([str(folder)], manager=manager)
    assert [r["messages"][0]["content"] for r in result.rows] == ["q1", "q2", "q3"]
    assert result.sources[0].kind == "folder"
    assert [Path(f).name for f in result.sources[0].files] == ["a.json", "b.jsonl", "c.csv"]


def test_relative_image_paths_resolve_against_the_data_file(tmp_path, manager, monkeypatch):
    data = tmp_path / "ds"
    (data / "images").mkdir(parents=True)
    (data / "images" / "1.png").write_bytes(b"png")
    write_jsonl(
        data / "train.jsonl", [{"query": "<image>What?", "response": "A.", "images": ["images/1.png"]}]
    )
    monkeypatch.chdir(tmp_path)  # not the data folder
    result = load_rows(["ds/train.jsonl"], manager=manager)
    assert result.rows[0]["images"] == [str(data / "images" / "1.png")]
    assert os.path.isabs(result.rows[0]["images"][0])


def test_missing_file_and_unsupported_file(tmp_path, manager):
    with pytest.raises(SwiftError, match="dataset file not found: data/none.jsonl"):
        load_rows(["data/none.jsonl"], manager=manager)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SwiftError, match="unsupported file type '.txt'"):
        load_rows([str(tmp_path / "x.txt")], manager=manager)


def test_empty_dataset_is_an_error(tmp_path, manager):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(SwiftError, match="no rows loaded"):
        load_rows([str(tmp_path / "empty.jsonl")], manager=manager)
    write_jsonl(tmp_path / "allbad.jsonl", ["{oops"])
    with pytest.raises(SwiftError, match="no rows loaded.*skipped 1 bad row"):
        load_rows([str(tmp_path / "allbad.jsonl")], skip_bad_rows=True, manager=manager)


# --- sampling and mixing ------------------------------------------------------------------------


def test_sampling_fewer_rows_is_seeded(tmp_path, manager):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(i) for i in range(20)])
    first = load_rows([f"{path}#5"], manager=manager, seed=1)
    again = load_rows([f"{path}#5"], manager=manager, seed=1)
    other = load_rows([f"{path}#5"], manager=manager, seed=2)
    contents = [r["messages"][0]["content"] for r in first.rows]
    assert len(contents) == 5 and len(set(contents)) == 5
    assert first.rows == again.rows
    assert other.rows != first.rows
    assert first.sources[0].sample == 5 and first.sources[0].valid_rows == 20


def test_sampling_more_rows_repeats_then_samples_the_remainder(tmp_path, manager):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(i) for i in range(4)])
    result = load_rows([f"{path}#10"], manager=manager)
    counts = Counter(r["messages"][0]["content"] for r in result.rows)
    assert len(result.rows) == 10
    assert sorted(counts.values()) == [2, 2, 3, 3]  # two full copies, then 2 of the 4 once more
    assert result.rows[:4] == result.rows[4:8] == [{"messages": [U(f"q{i}"), A(f"a{i}")]} for i in range(4)]
    assert result.rows[0] is not result.rows[4]  # repeats are copies
    tails = {
        tuple(
            r["messages"][0]["content"] for r in load_rows([f"{path}#10"], manager=manager, seed=s).rows[8:]
        )
        for s in range(8)
    }
    assert len(tails) > 1  # the remainder is a seeded sample, not the first rows
    assert sample_indices(3, 7, __import__("random").Random(0))[:6] == [0, 1, 2, 0, 1, 2]


def test_bad_sample_counts(tmp_path, manager):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(1)])
    with pytest.raises(SwiftError, match="must be positive"):
        load_rows([f"{path}#0"], manager=manager)
    with pytest.raises(SwiftError, match="must be a number"):
        load_rows([f"{path}#many"], manager=manager)


def test_mixing_concatenates_specs_in_order(tmp_path, manager):
    a = write_jsonl(tmp_path / "a.jsonl", [qa(1), qa(2)])
    b = tmp_path / "b.csv"
    b.write_text("instruction,output\ni1,o1\n")
    result = load_rows([str(a), str(b), f"{a}#1"], manager=manager)
    assert [r["messages"][0]["content"] for r in result.rows][:3] == ["q1", "q2", "i1"]
    assert len(result.rows) == 4
    assert [s.rows for s in result.sources] == [2, 1, 1]
    assert "4 rows from 3 source(s)" in result.summary()


# --- bad rows -----------------------------------------------------------------------------------


BAD_ROWS = [
    ("{not json", "(json)", "invalid JSON"),
    ({"instruction": "I"}, "output", "missing"),
    (
        {"messages": [U("Q"), {"role": "assistant", "content": None}]},
        "messages[1].content",
        "expected a string, got null",
    ),
    ({"body": "hi"}, "(row)", "unknown format: keys found 'body'"),
    (
        {"messages": [U("Q"), A("a")], "rejected_messages": [U("P"), A("b")]},
        "rejected_messages",
        "must share everything before the final assistant turn",
    ),
    ({"prompt": "Q", "chosen": "", "rejected": "b"}, "chosen", "empty"),
    ([1, 2], "(row)", "expected an object, got list"),
]


@pytest.mark.parametrize(("bad", "field", "fragment"), BAD_ROWS)
def test_every_bad_row_error_names_file_line_and_field(tmp_path, manager, bad, field, fragment):
    path = write_jsonl(tmp_path / "train.jsonl", [qa(1), qa(2), bad, qa(4)])
    message = bad_row_error(str(path), manager)
    assert message.startswith(f"{path}, line 3, field '{field}': ")
    assert fragment in message


def test_bad_row_message_uses_the_path_as_given(tmp_path, manager, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(
        tmp_path / "data" / "train.jsonl", [qa(i) for i in range(6)] + [{"messages": [U("Q"), A(None)]}]
    )
    assert bad_row_error("data/train.jsonl", manager) == (
        "data/train.jsonl, line 7, field 'messages[1].content': expected a string, got null"
    )


def test_skip_bad_rows_counts_and_lists_them(tmp_path, manager):
    rows = [qa(1)] + [bad for bad, _, _ in BAD_ROWS] + [qa(2)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    result = load_rows([str(path)], skip_bad_rows=True, manager=manager)
    assert result.rows == [{"messages": [U("q1"), A("a1")]}, {"messages": [U("q2"), A("a2")]}]
    assert [(b.line, b.field) for b in result.bad_rows] == [
        (i + 2, field) for i, (_, field, _) in enumerate(BAD_ROWS)
    ]
    assert all(b.file == str(path) for b in result.bad_rows)
    assert result.sources[0].bad_rows == len(BAD_ROWS)
    summary = result.bad_rows_summary(limit=3)
    assert summary.startswith(
        f"skipped {len(BAD_ROWS)} bad rows: {path} line 2 ('(json)'), line 3 ('output')"
    )
    assert f"and {len(BAD_ROWS) - 3} more" in summary
    assert f"First: {path}, line 2, field '(json)'" in summary
    assert result.bad_rows_summary() in result.summary()


# --- names, registry, hub -----------------------------------------------------------------------


def test_builtin_datasets_are_registered(manager):
    registry = manager.registry("datasets")
    names = set(registry.names())
    assert {"alpaca-en", "alpaca-zh", "hh-rlhf", "ultrafeedback", "kto-mix-14k", "gsm8k", "rlaif-v"} <= names
    assert registry.get("alpaca-en").hf_id == "vicgalle/alpaca-gpt4"
    assert registry.get("alpaca-en").ms_id == "AI-ModelScope/alpaca-gpt4-data-en"
    assert registry.get("hh-rlhf").hf_id == "Anthropic/hh-rlhf"
    uf = registry.get("ultrafeedback")
    assert (uf.hf_id, uf.split) == ("HuggingFaceH4/ultrafeedback_binarized", "train_prefs")
    gsm = registry.get("gsm8k")
    assert (gsm.subset, dict(gsm.columns)) == ("main", {"question": "query", "answer": "response"})
    assert all(d.description and (d.hf_id or d.path) for d in registry)
    assert all(d.plugin == "datasets" and d.distribution == "swift-core" for d in registry)


def test_descriptor_columns_accept_a_dict():
    d = DatasetDescriptor(name="x", columns={"a": "query"}, tags="sft")
    assert d.columns == (("a", "query"),) and d.tags == ("sft",)


def test_builtin_datasets_module_is_light():
    code = "import sys, swift_core.builtin.datasets; print(sorted(m for m in ('datasets', 'pyarrow', 'pandas', 'numpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name_suggests_the_nearest_registered(manager):
    with pytest.raises(UnknownNameError) as info:
        load_rows(["alpaca-ne"], manager=manager)
    message = str(info.value)
    assert "unknown dataset 'alpaca-ne'" in message
    assert "Did you mean 'alpaca-en'" in message
    assert "hh-rlhf" in message  # the registered names are listed


def test_registered_hub_dataset_offline_is_a_clear_error(manager):
    assert os.environ["HF_DATASETS_OFFLINE"] == "1"
    with pytest.raises(SwiftError) as info:
        load_rows(["hh-rlhf#100"], manager=manager)
    message = str(info.value)
    assert "dataset 'hh-rlhf' (hub id Anthropic/hh-rlhf) needs the Hugging Face Hub" in message
    assert "offline" in message
    assert "pass a local file instead: --dataset path/to/train.jsonl" in message


def test_unregistered_hub_id_offline_is_a_clear_error(manager):
    with pytest.raises(SwiftError, match="dataset 'someone/some-data' needs the Hugging Face Hub"):
        load_rows(["someone/some-data"], manager=manager)


class FakeHub:
    """Stands in for `datasets.load_dataset`: records the calls, returns local datasets."""

    def __init__(self, monkeypatch, tables):
        import datasets

        self.calls = []
        self.tables = tables
        monkeypatch.setattr(datasets, "load_dataset", self)

    def __call__(self, path, name=None, split=None):
        self.calls.append((path, name, split))
        return self.tables[path]


def test_registered_dataset_loads_with_subset_split_columns_and_images(manager, monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("SWIFT_CACHE_DIR", str(tmp_path / "cache"))
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
    table = datasets.Dataset.from_dict(
        {"image": [{"bytes": png, "path": None}], "question": ["<image>Tissue?"], "answer": ["Liver."]},
        features=datasets.Features(
            {
                "image": datasets.Image(),
                "question": datasets.Value("string"),
                "answer": datasets.Value("string"),
            }
        ),
    )
    hub = FakeHub(monkeypatch, {"flaviagiammarino/path-vqa": table})
    result = load_rows(["path-vqa"], manager=manager)
    assert hub.calls == [("flaviagiammarino/path-vqa", None, "train")]
    (row,) = result.rows
    assert row["messages"] == [U("<image>Tissue?"), A("Liver.")]
    (image,) = row["images"]
    assert image.startswith(str(tmp_path / "cache" / "images")) and image.endswith(".png")
    assert Path(image).read_bytes() == png
    assert result.sources[0].kind == "registered"


def test_hub_ids_of_registered_datasets_use_their_split_and_hub_bad_rows_are_skipped(manager, monkeypatch):
    datasets = pytest.importorskip("datasets")
    good = {"prompt": "Q", "chosen": [U("Q"), A("good")], "rejected": [U("Q"), A("bad")]}
    bad = {"prompt": "Q", "chosen": [U("Q"), A("good")], "rejected": [U("other"), A("bad")]}
    hub = FakeHub(
        monkeypatch, {"HuggingFaceH4/ultrafeedback_binarized": datasets.Dataset.from_list([good, bad])}
    )
    result = load_rows(["HuggingFaceH4/ultrafeedback_binarized"], manager=manager)
    assert hub.calls == [("HuggingFaceH4/ultrafeedback_binarized", None, "train_prefs")]
    assert result.rows == [{"messages": [U("Q"), A("good")], "rejected_response": "bad"}]
    assert [(b.file, b.unit, b.line, b.field) for b in result.bad_rows] == [
        ("HuggingFaceH4/ultrafeedback_binarized", "row", 2, "rejected")
    ]


def test_modelscope_id_and_alias_find_the_registered_dataset(manager, monkeypatch):
    datasets = pytest.importorskip("datasets")
    table = datasets.Dataset.from_list([{"instruction": "I", "input": "", "output": "O"}])
    hub = FakeHub(monkeypatch, {"vicgalle/alpaca-gpt4": table})
    for spec in ("AI-ModelScope/alpaca-gpt4-data-en#3", "alpaca-gpt4-data-en"):
        result = load_rows([spec], manager=manager)
        assert result.rows[0] == {"messages": [U("I"), A("O")]}
    assert len(load_rows(["alpaca-en#3"], manager=manager).rows) == 3
    assert {c[0] for c in hub.calls} == {"vicgalle/alpaca-gpt4"}


def test_default_manager_is_the_process_one(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [qa(1)])
    assert len(load_rows(str(path)).rows) == 1
    with pytest.raises(UnknownNameError, match="Did you mean 'hh-rlhf'"):
        load_rows(["hh-rlfh"])


def test_text_rows_for_pretraining():
    from swift_core.datasets.formats import RowError, convert_row

    assert convert_row({"text": "Once upon a time."}) == {
        "messages": [{"role": "assistant", "content": "Once upon a time."}]
    }
    with pytest.raises(RowError, match="empty"):
        convert_row({"text": "  "})


@pytest.mark.parametrize(
    ("row", "messages"),
    [
        ({"messages": [U("a")]}, [U("a")]),
        ({"messages": [U("a"), A("b"), U("c")]}, [U("a"), A("b"), U("c")]),
        ({"instruction": "I", "input": "x"}, [U("I\nx")]),
        ({"query": "q", "system": "s"}, [S("s"), U("q")]),
        ({"prompt": "p"}, [U("p")]),
        ({"prompt": "p", "completion": None}, [U("p")]),
        ({"messages": [U("a"), A("b")]}, [U("a"), A("b")]),  # an answer is still welcome
    ],
)
def test_inference_rows_may_stop_at_the_prompt(row, messages):
    if messages[-1]["role"] != "assistant":
        with pytest.raises(RowError):
            convert_row(row)  # training needs the answer
    assert convert_row(row, answer_optional=True)["messages"] == messages


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ({"messages": [U("a"), U("b")]}, "messages[1].role", "expected 'assistant'"),
        ({"messages": [A("b")]}, "messages[0].role", "expected 'user'"),
        ({"instruction": "I", "output": 3}, "output", "expected a string"),
        ({"query": None}, "query", "expected a string, got null"),
    ],
)
def test_inference_rows_are_still_checked(row, field, fragment):
    with pytest.raises(RowError) as info:
        convert_row(row, answer_optional=True)
    assert info.value.field == field and fragment in info.value.message


def test_load_rows_takes_prompt_only_rows_for_inference(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"query": "hi"}) + "\n" + json.dumps({"query": "x", "response": "y"}) + "\n")
    with pytest.raises(BadRowError) as info:
        load_rows(str(path))
    assert "line 1" in str(info.value) and "response" in str(info.value)
    rows = load_rows(str(path), answer_optional=True).rows
    assert [r["messages"] for r in rows] == [[U("hi")], [U("x"), A("y")]]
