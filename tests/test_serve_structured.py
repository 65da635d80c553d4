"""Structured outputs on `swift deploy` with the transformers engine (issue 16): response_format
json_object / json_schema and the guided_* extensions are enforced by xgrammar's logits mask, so
that even the tiny random-weight model's answers parse and validate every time; what an engine
cannot enforce is refused (400), never ignored. The openai SDK drives an in-process uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, Field
from serve_helpers import running

from swift_core.engines.constraints import JSON_SCHEMA, OutputConstraint
from swift_core.engines.protocol import EngineConfig, GenerationRequest, UnsupportedRequest

KEY = "sk-structured"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = [{"role": "user", "content": "describe a pet as JSON"}]


class Pet(BaseModel):
    """Bounded fields: a random model cannot run past max_tokens inside a string or a number."""

    name: str = Field(max_length=8)
    age: int = Field(ge=0, le=30)
    kind: Literal["cat", "dog", "fish"]
    vaccinated: bool


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
    from swift_core.serve.app import create_app

    with running(create_app(engine, Settings())) as url:
        yield url


@pytest.fixture()
def client(server):
    import openai

    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120)


def post(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=120)


def test_parse_with_a_pydantic_model_validates_every_sampled_choice(client):
    """beta.chat.completions.parse sends a strict json_schema; 8 sampled choices of a random model
    all parse into the model (without the mask they are not even JSON: see the last test)."""
    r = client.beta.chat.completions.parse(
        model="tiny", messages=CHAT, response_format=Pet, n=8, temperature=1.0, seed=3, max_tokens=120
    )
    assert len(r.choices) == 8
    for choice in r.choices:
        assert choice.finish_reason == "stop", choice.message.content
        assert isinstance(choice.message.parsed, Pet)
        assert Pet.model_validate_json(choice.message.content) == choice.message.parsed


def test_json_object_gives_a_json_object(client):
    r = client.chat.completions.create(
        model="tiny",
        messages=CHAT,
        response_format={"type": "json_object"},
        max_tokens=120,
        temperature=0,
    )
    choice = r.choices[0]
    if choice.finish_reason == "stop":  # an unbounded object may run out of tokens; if it ended, it is JSON
        assert isinstance(json.loads(choice.message.content), dict)
    else:
        assert choice.message.content.startswith("{")


def test_guided_choice_and_regex(client):
    options = ["red", "green", "blue light"]
    r = client.chat.completions.create(
        model="tiny", messages=CHAT, n=6, temperature=1.0, seed=1, max_tokens=20,
        extra_body={"guided_choice": options},
    )  # fmt: skip
    assert {c.message.content for c in r.choices} <= set(options)
    r = client.chat.completions.create(
        model="tiny", messages=CHAT, n=6, temperature=1.0, seed=2, max_tokens=20,
        extra_body={"guided_regex": r"[0-9]{3}-[a-c]{2}"},
    )  # fmt: skip
    assert all(re.fullmatch(r"[0-9]{3}-[a-c]{2}", c.message.content) for c in r.choices)


def test_a_streamed_json_schema_answer_equals_the_whole_one(client):
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "pet", "schema": Pet.model_json_schema(), "strict": True},
    }
    whole = client.chat.completions.create(
        model="tiny", messages=CHAT, response_format=fmt, max_tokens=120, temperature=0
    )
    stream = client.chat.completions.create(
        model="tiny", messages=CHAT, response_format=fmt, max_tokens=120, temperature=0, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == whole.choices[0].message.content
    Pet.model_validate_json(text)


def test_constrained_and_free_requests_share_a_batch_without_leaking(engine):
    """The mask applies to its own row only: a free request batched with constrained ones gives
    the same greedy answer as alone."""
    free = GenerationRequest(messages=CHAT, max_tokens=12, temperature=0)
    pet = OutputConstraint(JSON_SCHEMA, Pet.model_json_schema())
    constrained = GenerationRequest(messages=CHAT, max_tokens=120, temperature=0, constraint=pet)

    async def main():
        alone = await engine.generate(free)
        calls = engine.stats.generate_calls
        together = await asyncio.gather(engine.generate(constrained), engine.generate(free))
        return alone, together, engine.stats.generate_calls - calls

    alone, (c, f), calls = asyncio.run(main())
    assert calls == 1  # one batch
    assert f.choices[0].text == alone.choices[0].text
    Pet.model_validate_json(c.choices[0].text)


def test_unconstrained_the_random_model_does_not_write_json(engine):
    """The control: the same sampled requests without the mask are not valid Pet JSON."""
    free = GenerationRequest(messages=CHAT, max_tokens=40, temperature=1.0, seed=3, n=8)
    answers = asyncio.run(engine.generate(free)).choices
    valid = 0
    for a in answers:
        with contextlib.suppress(ValueError):
            Pet.model_validate_json(a.text)
            valid += 1
    assert valid == 0


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "json_schema.schema"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_object"}, "guided_regex": "a+"}, "guided_regex"),
        ({"guided_choice": []}, "guided_choice"),
        ({"guided_regex": "(unclosed"}, "cannot be compiled"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "nonsense"}}}},
            "compiled",
        ),
    ],
)
def test_bad_constraints_are_400s(server, fields, param):
    r = post(server, {"model": "tiny", "messages": CHAT, "max_tokens": 4, **fields})
    assert r.status_code == 400, r.text
    assert param in json.dumps(r.json()["error"])


def test_an_engine_that_cannot_constrain_refuses(server, engine, monkeypatch):
    monkeypatch.setattr(engine.capabilities, "constraints", frozenset())
    r = post(server, {"model": "tiny", "messages": CHAT, "response_format": {"type": "json_object"}})
    assert r.status_code == 400 and "cannot constrain" in r.json()["error"]["message"]
    with pytest.raises(UnsupportedRequest, match="json_object"):
        engine.check_request(GenerationRequest(messages=CHAT, constraint=OutputConstraint("json_object")))
