"""`swift deploy` against a hostile or careless client (issue 11): no request fails another's, no
body or value a client sends is a 500 or freezes the server, the key cannot be switched off by
accident, and a real failure is logged once with its traceback.

The server runs in-process over the tiny Qwen2 model (as in test_serve.py); the last test fuzzes
the published OpenAPI schema with schemathesis for a bounded number of examples.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass

import httpx
import pytest
from serve_helpers import running

from swift_core.engines.protocol import EngineConfig, GenerationRequest, UnsupportedRequest
from swift_core.errors import SwiftError

KEY = "sk-hardening"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = [{"role": "user", "content": "hello, who are you?"}]


@dataclass
class Settings:
    """What create_app reads from the deploy arguments."""

    api_key: str | None = KEY
    served_model_name: str = "tiny"
    max_new_tokens: int | None = 8
    max_request_bytes: int | None = None  # None: the default
    max_stop: int | None = None
    max_temperature: float | None = None


@pytest.fixture(scope="module")
def engine(tiny_qwen):
    from swift_core.engines.transformers.engine import TransformersEngine

    eng = TransformersEngine(EngineConfig(model=str(tiny_qwen), max_model_len=160))
    yield eng
    asyncio.run(eng.close())


@pytest.fixture(scope="module")
def server(engine):
    from swift_core.serve.app import create_app

    with running(create_app(engine, Settings())) as url:
        yield url


def post(url: str, body: dict, path: str = "/v1/chat/completions", **kw) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=AUTH, timeout=60, **kw)


def chat(**fields) -> dict:
    return {"model": "tiny", "messages": CHAT, "max_tokens": 6, **fields}


# -- 1. one request cannot fail its batch -------------------------------------------------------------


def test_a_row_that_cannot_sample_fails_alone_and_its_batch_neighbours_are_answered(engine, monkeypatch):
    """Validation switched off, a repetition_penalty of 1e-39 makes its row's logits infinite inside
    the batched generate call: that request fails, the innocent ones batched with it do not."""
    monkeypatch.setattr(type(engine), "check_request", lambda self, request: None)

    async def main():
        async def streamed(request):
            return "".join([c.text async for c in engine.stream(request)])

        innocent = GenerationRequest(messages=CHAT, max_tokens=6, temperature=0.8, seed=None)
        greedy = GenerationRequest(messages=CHAT, max_tokens=6, temperature=0)
        bad = GenerationRequest(messages=CHAT, max_tokens=6, temperature=0.8, repetition_penalty=1e-39)
        return await asyncio.gather(
            engine.generate(innocent),
            engine.generate(bad),
            streamed(innocent),
            engine.generate(greedy),
            streamed(bad),
            return_exceptions=True,
        )

    before = engine.stats.generate_calls
    ok1, bad1, ok2, ok3, bad2 = asyncio.run(main())
    assert engine.stats.generate_calls - before >= 1
    for ok in (ok1, ok3):
        assert not isinstance(ok, BaseException), ok
        assert ok.choices[0].finish_reason in ("length", "stop")
    assert isinstance(ok2, str), ok2
    for bad in (bad1, bad2):
        assert isinstance(bad, UnsupportedRequest), bad
        assert "repetition_penalty" in str(bad) or "sampl" in str(bad)


def test_a_batch_that_fails_is_run_again_without_the_failing_request(engine, monkeypatch):
    """Any failure of the batched call (here a bug for rows with the stop string "BOOM"): each
    request that had streamed nothing yet is run again on its own, so only the culprit fails."""
    from swift_core.engines.transformers import rows

    real = rows.RowTracker._add

    def add(self, row, token, logprob):
        if "BOOM" in row.stops:
            raise RuntimeError("a bug for this row")
        return real(self, row, token, logprob)

    monkeypatch.setattr(rows.RowTracker, "_add", add)

    async def main():
        async def streamed(request):
            return "".join([c.text async for c in engine.stream(request)])

        innocent = GenerationRequest(messages=CHAT, max_tokens=5, temperature=0)
        culprit = GenerationRequest(messages=CHAT, max_tokens=5, temperature=0, stop=["BOOM"])
        return await asyncio.gather(
            engine.generate(innocent), streamed(innocent), engine.generate(culprit), return_exceptions=True
        )

    whole, streamed, failed = asyncio.run(main())
    assert not isinstance(whole, BaseException) and whole.choices[0].text == streamed
    assert isinstance(failed, RuntimeError) and "a bug for this row" in str(failed)


def test_a_tiny_temperature_is_greedy_over_http_and_innocent_neighbours_succeed(server):
    greedy = post(server, chat(temperature=0)).json()["choices"][0]["message"]["content"]
    bodies = [chat(temperature=1e-39), chat(temperature=0.7), chat(temperature=0.7, stream=True)]
    with_bad_penalty = chat(temperature=0.7, repetition_penalty=1e-39)

    async def main():
        async with httpx.AsyncClient(base_url=server, headers=AUTH, timeout=60) as http:
            return await asyncio.gather(
                *(http.post("/v1/chat/completions", json=b) for b in [*bodies, with_bad_penalty])
            )

    tiny, sampled, streamed, bad = asyncio.run(main())
    assert tiny.status_code == 200 and tiny.json()["choices"][0]["message"]["content"] == greedy
    assert sampled.status_code == 200 and streamed.status_code == 200
    assert "data: [DONE]" in streamed.text and '"error"' not in streamed.text
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "repetition_penalty"


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": float("inf")},
        {"repetition_penalty": 1e-39},
        {"repetition_penalty": float("inf")},
        {"top_p": float("nan")},
        {"seed": 1 << 64},
        {"seed": -(1 << 63) - 1},
        {"top_k": 1 << 64},
    ],
)
def test_every_engine_refuses_values_that_cannot_sample(fields):
    """The protocol's check_request, which every engine (vLLM's too) runs first."""
    from swift_core.engines.protocol import EngineCapabilities, InferenceEngine

    class Bare(InferenceEngine):
        capabilities = EngineCapabilities(seed=True, top_k=True, repetition_penalty=True)

        async def generate(self, request):  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(UnsupportedRequest):
        Bare().check_request(GenerationRequest(messages=CHAT, **fields))


# -- 3. request size ----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_before_it_is_read(engine):
    from swift_core.serve.app import create_app

    with running(create_app(engine, Settings(max_request_bytes=2000))) as url:
        big = chat(messages=[{"role": "user", "content": "x" * 3000}])
        r = post(url, big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        assert "2000" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: the limit is counted while the body arrives
            yield json.dumps(big).encode()

        r = httpx.post(f"{url}/v1/completions", content=chunks(), headers=AUTH, timeout=60)
        assert r.status_code == 413
        assert post(url, chat()).status_code == 200
        assert httpx.get(f"{url}/health").status_code == 200


def test_the_default_limit_refuses_a_20_mb_body(server):
    r = post(server, chat(messages=[{"role": "user", "content": "x" * (20 << 20)}]))
    assert r.status_code == 413
    assert httpx.get(f"{server}/health", timeout=10).status_code == 200


def test_a_prompt_far_over_the_context_is_refused_without_tokenizing(server, monkeypatch):
    import swift_core.datasets.encode as encode

    def no(*args, **kwargs):
        raise AssertionError("the prompt was tokenized")

    monkeypatch.setattr(encode, "encode_prompt", no)
    r = post(server, chat(messages=[{"role": "user", "content": "word " * 200_000}]))
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    r = post(server, {"model": "tiny", "prompt": "word " * 200_000}, path="/v1/completions")
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"


def test_tokenizing_runs_off_the_event_loop(server, monkeypatch):
    """While one request's prompt is being rendered, /health still answers."""
    import swift_core.datasets.encode as encode

    real = encode.encode_prompt
    entered, release = threading.Event(), threading.Event()

    def slow(*args, **kwargs):
        entered.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(encode, "encode_prompt", slow)
    result: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: result.append(post(server, chat())))
    worker.start()
    try:
        assert entered.wait(30)
        assert httpx.get(f"{server}/health", timeout=5).status_code == 200
    finally:
        release.set()
        worker.join(60)
    assert result and result[0].status_code == 200


# -- 4. values that were 500s, and OpenAI's limits ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"seed": 1 << 64}, "seed"),
        ({"seed": -(1 << 63) - 1}, "seed"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": "f"}]}]}, None),
        ({"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": [1]}]}]}, None),
        ({"messages": [{"role": "assistant", "tool_calls": ["call"]}]}, None),
        ({"tools": [{"type": "function", "function": "f"}]}, None),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": "x" * 5000}, "stop"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 129}, "n"),
        ({"max_tokens": 1 << 64}, "max_tokens"),
        ({"top_k": 1 << 40}, "top_k"),
        ({"repetition_penalty": 1e-39}, "repetition_penalty"),
        ({"top_logprobs": 1 << 64, "logprobs": True}, "top_logprobs"),
    ],
)
def test_bad_values_are_400s_naming_the_parameter(server, fields, param):
    r = post(server, chat(**fields))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param
    assert httpx.get(f"{server}/health").status_code == 200


def test_infinite_temperature_in_the_json_body_is_a_400(server):
    body = json.dumps(chat()).replace('"max_tokens"', '"temperature": 1e999, "max_tokens"')
    r = httpx.post(
        f"{server}/v1/chat/completions",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"


def test_edge_values_inside_the_limits_are_served(server):
    for fields in ({"seed": (1 << 64) - 1}, {"seed": -(1 << 63)}, {"stop": ["a", "b", "c", "d"]}):
        assert post(server, chat(temperature=0.5, **fields)).status_code == 200, fields
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]
    messages = [*CHAT, {"role": "assistant", "content": None, "tool_calls": calls}]
    r = post(server, chat(messages=[*messages, {"role": "tool", "tool_call_id": "c1", "content": "2"}]))
    assert r.status_code == 200, r.text


def test_flags_widen_the_openai_limits(engine):
    from swift_core.serve.app import create_app

    with running(create_app(engine, Settings(max_stop=8, max_temperature=5.0))) as url:
        assert post(url, chat(stop=list("abcdef"), temperature=3.0)).status_code == 200
        assert post(url, chat(stop=list("abcdefghi"))).status_code == 400


# -- 8. the API key -------------------------------------------------------------------------------------


def test_an_empty_api_key_is_refused_and_the_environment_can_give_it(monkeypatch):
    from swift_core.serve.auth import resolve_api_key

    monkeypatch.delenv("SWIFT_API_KEY", raising=False)
    with pytest.raises(SwiftError, match="--api_key"):
        resolve_api_key("")
    with pytest.raises(SwiftError, match="--api_key"):
        resolve_api_key("   ")
    assert resolve_api_key(None) is None
    assert resolve_api_key("sk-1") == "sk-1"
    monkeypatch.setenv("SWIFT_API_KEY", "sk-env")
    assert resolve_api_key(None) == "sk-env"
    assert resolve_api_key("sk-flag") == "sk-flag"
    monkeypatch.setenv("SWIFT_API_KEY", "")
    with pytest.raises(SwiftError, match="SWIFT_API_KEY"):
        resolve_api_key(None)


def test_an_app_built_with_an_empty_key_refuses_to_start(engine):
    from swift_core.serve.app import create_app

    with pytest.raises(SwiftError, match="api_key"):
        create_app(engine, Settings(api_key=""))


def _deploy_args(**fields):
    from swift_core.infer.arguments import DeployArguments

    return DeployArguments(model="unused", port=0, **fields)


class _Stop(Exception):
    pass


def _no_engine(*args, **kwargs):
    raise _Stop()


def test_deploy_refuses_an_empty_key_before_loading_the_model(monkeypatch):
    import swift_core.serve.deploy as deploy

    monkeypatch.setattr(deploy, "build_engine", _no_engine)
    with pytest.raises(SwiftError, match="--api_key"):
        deploy.run_deploy(_deploy_args(api_key=""))


def test_deploy_warns_when_it_listens_beyond_loopback_without_a_key(monkeypatch, caplog):
    import swift_core.serve.deploy as deploy

    monkeypatch.delenv("SWIFT_API_KEY", raising=False)
    monkeypatch.setattr(deploy, "build_engine", _no_engine)
    with caplog.at_level(logging.WARNING, logger="swift_core"), pytest.raises(_Stop):
        deploy.run_deploy(_deploy_args(host="0.0.0.0"))
    assert any("without an API key" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="swift_core"), pytest.raises(_Stop):
        deploy.run_deploy(_deploy_args(host="127.0.0.1"))
    monkeypatch.setenv("SWIFT_API_KEY", "sk-env")
    with caplog.at_level(logging.WARNING, logger="swift_core"), pytest.raises(_Stop):
        deploy.run_deploy(_deploy_args(host="0.0.0.0"))
    assert not any("without an API key" in r.getMessage() for r in caplog.records)


# -- 10. a 500 is logged once, with its traceback ---------------------------------------------------------


class _Broken:
    """An engine whose generate hits a bug."""

    from swift_core.engines.protocol import EngineCapabilities

    capabilities = EngineCapabilities()
    model_name = "broken"
    model_aliases = ()
    max_model_len = 100

    def adapter_names(self):
        return []

    def check_request(self, request):
        pass

    async def generate(self, request):
        raise RuntimeError("the bug inside")

    async def stream(self, request):
        raise RuntimeError("the bug inside")
        yield  # pragma: no cover

    async def close(self):
        pass


def test_a_500_is_logged_once_at_error_level_with_its_traceback(caplog):
    from swift_core.serve.app import create_app
    from swift_core.serve.settings import ServeSettings

    app = create_app(_Broken(), ServeSettings(served_model_name="broken"))  # type: ignore[arg-type]

    async def main():
        transport = httpx.ASGITransport(app=app)  # raises whatever escapes the app's handlers
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.post("/v1/chat/completions", json={"model": "broken", "messages": CHAT})

    with caplog.at_level(logging.INFO):
        r = asyncio.run(main())
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    assert "the bug inside" not in r.text
    logged = [rec for rec in caplog.records if rec.exc_info and rec.levelno >= logging.ERROR]
    assert len(logged) == 1 and "the bug inside" in str(logged[0].exc_info[1])


def test_the_cli_log_format_keeps_the_traceback():
    from swift_core.cli.main import _Formatter

    try:
        raise RuntimeError("the bug inside")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "swift_core.x", logging.ERROR, "f", 1, "request failed", (), sys.exc_info()
        )
    text = _Formatter().format(record)
    assert text.startswith("error: request failed\n")
    assert "Traceback (most recent call last)" in text and "RuntimeError: the bug inside" in text
    plain = logging.LogRecord("swift_core.x", logging.INFO, "f", 1, "hello", (), None)
    assert _Formatter().format(plain) == "info: hello"


# -- the served model name: one rule for every engine -------------------------------------------------------


def test_the_served_name_rule(tmp_path):
    from swift_core.engines.served_names import served_names

    folder = tmp_path / "my-model"
    folder.mkdir()
    assert served_names("qwen-7b", None, "Qwen/Qwen2.5-7B-Instruct") == [
        "qwen-7b",
        "Qwen/Qwen2.5-7B-Instruct",
    ]
    assert served_names("Qwen/Qwen2.5-7B-Instruct", None, "Qwen/Qwen2.5-7B-Instruct") == [
        "Qwen/Qwen2.5-7B-Instruct"
    ]
    assert served_names(str(folder) + "/", None, None) == ["my-model"]
    assert served_names(str(folder), None, "Org/Base") == ["my-model", "Org/Base"]
    assert served_names("qwen-7b", "chat", "Qwen/Qwen2.5-7B-Instruct") == ["chat"]


def test_the_transformers_engine_follows_the_rule(engine, tiny_qwen):
    from swift_core.engines.served_names import served_names

    assert [engine.model_name, *engine.model_aliases] == served_names(str(tiny_qwen), None, None)


def test_aliases_are_listed_and_served(engine):
    from swift_core.serve.app import create_app
    from swift_core.serve.settings import ServeSettings

    settings = ServeSettings(served_model_name="tiny", aliases=("Org/Tiny-Model",))
    with running(create_app(engine, settings)) as url:
        models = httpx.get(f"{url}/v1/models", timeout=10).json()["data"]
        assert [m["id"] for m in models] == ["tiny", "Org/Tiny-Model"]
        r = httpx.post(
            f"{url}/v1/chat/completions", json={**chat(), "model": "Org/Tiny-Model", "temperature": 0}
        )
        assert r.status_code == 200 and r.json()["model"] == "Org/Tiny-Model"


# -- the published schema ----------------------------------------------------------------------------------


def test_the_openapi_schema_is_published_behind_the_key(server, engine):
    from swift_core.serve.app import create_app

    assert httpx.get(f"{server}/openapi.json").status_code == 401
    schema = httpx.get(f"{server}/openapi.json", headers=AUTH).json()
    body = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    assert body["required"] and "application/json" in body["content"]
    assert "/v1/completions" in schema["paths"] and "/health" in schema["paths"]
    with running(create_app(engine, Settings(api_key=None))) as url:
        assert httpx.get(f"{url}/openapi.json").status_code == 200


def test_schemathesis_finds_no_server_error(server):
    """Bounded fuzzing of every published operation: no 5xx, and /health alive after each."""
    import hypothesis
    import schemathesis

    raw = httpx.get(f"{server}/openapi.json", headers=AUTH).json()
    schema = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    statuses: list[int] = []

    def fuzzer(operation, mode, examples):
        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            response = case.call(base_url=server, headers=AUTH, timeout=60)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{operation.label}: {response.status_code} {response.text[:300]}")
            assert httpx.get(f"{server}/health", timeout=10).status_code == 200

        return fuzz

    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /v1/chat/completions", "POST /v1/completions"}
    for operation in operations:  # values the schema allows, then values it does not
        fuzzer(operation, schemathesis.GenerationMode.POSITIVE, 30)()
        if operation.method.upper() == "POST":  # GETs take nothing that could be wrong
            fuzzer(operation, schemathesis.GenerationMode.NEGATIVE, 20)()
    assert not failures, "\n".join(failures[:5])
    assert 200 in statuses and 400 in statuses  # it reached the engine, and its refusals
