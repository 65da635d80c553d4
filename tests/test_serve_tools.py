"""Tool calls (issue 16): the template's own syntax parsed whole and while streaming, and
tool_choice 'required' / a named function forced with a grammar. The tiny random-weight model calls
a tool only when forced, so the end-to-end tests force it; the parsers are also fed fixed texts
one character at a time (the worst chunking a stream can have).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from swift_core.engines.protocol import EngineConfig
from swift_core.templates.tool_calls import HERMES, LLAMA3_JSON

KEY = "sk-tools"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = [{"role": "user", "content": "what is the weather in Paris?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "the weather of a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 8},
                    "unit": {"enum": ["C", "F"]},
                },
                "required": ["city", "unit"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 99}},
                "required": ["a"],
                "additionalProperties": False,
            },
        },
    },
]


def stream_calls(fmt, text: str, step: int = 1):
    """(content, [(name, arguments)]) of `text` streamed `step` characters at a time."""
    parser = fmt.streamer()
    pieces = []
    for i in range(0, len(text), step):
        pieces += parser.feed(text[i : i + step])
    pieces += parser.finish()
    content = "".join(p.content for p in pieces if p.index is None)
    calls: dict[int, list[str]] = {}
    for p in pieces:
        if p.index is not None:
            if p.call_id is not None:
                assert p.index not in calls  # id and name once, first
                calls[p.index] = [p.name, ""]
            calls[p.index][1] += p.arguments
    return content, [tuple(calls[i]) for i in sorted(calls)]


def whole_calls(fmt, text: str):
    content, calls = fmt.parse(text)
    return content, [(c["function"]["name"], c["function"]["arguments"]) for c in calls]


HERMES_TEXTS = [
    'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}\n</tool_call>',
    '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", '
    '"arguments": {"city": "a}b", "unit": "F"}}\n</tool_call>',
    '<tool_call>{"arguments": {"a": 2}, "name": "add"}</tool_call>',  # keys in the other order
    "no call here, just a < sign and <tool",
]


@pytest.mark.parametrize("text", HERMES_TEXTS)
@pytest.mark.parametrize("step", [1, 3, 1000])
def test_hermes_streamed_calls_reassemble_to_the_parsed_ones(text, step):
    content, calls = stream_calls(HERMES, text, step)
    whole_content, whole = whole_calls(HERMES, text)
    assert [name for name, _ in calls] == [name for name, _ in whole]
    assert [json.loads(a) for _, a in calls] == [json.loads(a) for _, a in whole]
    assert content.strip() == (whole_content or "").strip()


def test_a_broken_hermes_block_stays_content():
    text = "<tool_call>{not json}</tool_call>"
    assert whole_calls(HERMES, text) == (text, [])
    assert stream_calls(HERMES, text) == (text, [])


def test_llama3_json_calls_whole_and_streamed():
    text = '{"name": "add", "parameters": {"a": 5}}'
    assert whole_calls(LLAMA3_JSON, text) == (None, [("add", '{"a": 5}')])
    assert stream_calls(LLAMA3_JSON, text) == ("", [("add", '{"a": 5}')])
    assert stream_calls(LLAMA3_JSON, "plain answer") == ("plain answer", [])


# -- end to end over the openai SDK -----------------------------------------------------------------


class Settings:
    api_key = KEY
    served_model_name = "tiny"
    max_new_tokens = 120


@pytest.fixture(scope="module")
def engine(tiny_qwen):
    from swift_core.engines.transformers.engine import TransformersEngine

    eng = TransformersEngine(EngineConfig(model=str(tiny_qwen)))
    yield eng
    asyncio.run(eng.close())


@pytest.fixture(scope="module")
def server(engine):
    from serve_helpers import running

    from swift_core.serve.app import create_app

    with running(create_app(engine, Settings())) as url:
        yield url


@pytest.fixture()
def client(server):
    import openai

    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120)


def check_arguments(name: str, arguments: str) -> None:
    args = json.loads(arguments)
    if name == "get_weather":
        assert set(args) == {"city", "unit"} and args["unit"] in "CF" and len(args["city"]) <= 8
    else:
        assert set(args) == {"a"} and 0 <= args["a"] <= 99


def test_required_always_yields_a_call(client):
    r = client.chat.completions.create(
        model="tiny", messages=CHAT, tools=TOOLS, tool_choice="required", n=6, temperature=1.0, seed=4
    )
    for choice in r.choices:
        assert choice.finish_reason == "tool_calls", choice.message.content
        (call,) = choice.message.tool_calls
        assert call.type == "function" and call.id.startswith("call_")
        check_arguments(call.function.name, call.function.arguments)


def test_a_named_function_is_the_one_called(client):
    choice = {"type": "function", "function": {"name": "add"}}
    r = client.chat.completions.create(
        model="tiny", messages=CHAT, tools=TOOLS, tool_choice=choice, n=4, temperature=1.0, seed=5
    )
    for c in r.choices:
        assert [t.function.name for t in c.message.tool_calls] == ["add"]
        check_arguments("add", c.message.tool_calls[0].function.arguments)


def test_a_streamed_call_arrives_as_delta_tool_calls_equal_to_the_whole_one(client):
    kwargs = dict(model="tiny", messages=CHAT, tools=TOOLS, tool_choice="required", temperature=0)
    whole = client.chat.completions.create(**kwargs).choices[0]
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [t for d in deltas for t in d.tool_calls or []]
    assert len(calls) > 2  # id and name first, then the arguments in pieces
    assert calls[0].id and calls[0].function.name and all(t.id is None for t in calls[1:])
    arguments = "".join(t.function.arguments or "" for t in calls)
    assert calls[0].function.name == whole.message.tool_calls[0].function.name
    assert json.loads(arguments) == json.loads(whole.message.tool_calls[0].function.arguments)
    assert not "".join(d.content or "" for d in deltas)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]


def test_auto_and_none_do_not_force(client, engine):
    """Without forcing, the random model writes text: no call, finish 'stop' or 'length'."""
    for choice in ("auto", "none"):
        r = client.chat.completions.create(
            model="tiny", messages=CHAT, tools=TOOLS, tool_choice=choice, max_tokens=8, temperature=0
        )
        assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"tool_choice": "required"}, "needs tools"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "not among"),
        ({"tools": TOOLS, "tool_choice": "always"}, "expected"),
        ({"tools": TOOLS, "tool_choice": "required", "response_format": {"type": "json_object"}}, "combined"),
    ],
)
def test_bad_tool_choices_are_400s(server, fields, message):
    body = {"model": "tiny", "messages": CHAT, "max_tokens": 4, **fields}
    r = httpx.post(f"{server}/v1/chat/completions", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "tool_choice", r.text
    assert message in r.json()["error"]["message"]
