"""`swift deploy`'s OpenAI-compatible server: the official openai SDK and raw HTTP against uvicorn."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch

from swift_core.engines.protocol import EngineConfig, GenerationRequest

KEY = "sk-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = [{"role": "user", "content": "hello, who are you?"}]


def make_adapter(base: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


class Settings:
    api_key = KEY
    served_model_name = "tiny"
    max_new_tokens = 32


@pytest.fixture(scope="module")
def engine(tiny_qwen, tmp_path_factory):
    from swift_core.engines.transformers.engine import TransformersEngine

    root = tmp_path_factory.mktemp("serve-adapters")
    adapters = {"lora-a": str(make_adapter(tiny_qwen, root / "a", 1))}
    eng = TransformersEngine(EngineConfig(model=str(tiny_qwen), adapters=adapters))
    yield eng
    asyncio.run(eng.close())


@pytest.fixture(scope="module")
def server(engine):
    """A real uvicorn server on a free 127.0.0.1 port, in a thread."""
    from swift_core.serve.app import create_app
    from swift_core.serve.server import bind_socket, make_server

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    srv = make_server(create_app(engine, Settings()), log_level="warning")
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)
    sock.close()


@pytest.fixture()
def client(server):
    import openai

    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# -- the openai SDK ----------------------------------------------------------------------------------


def test_chat_completion_matches_the_engine(client, engine):
    r = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=8, temperature=0)
    direct = asyncio.run(engine.generate(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0)))
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "tiny"
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content == direct.choices[0].text
    assert r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == direct.prompt_tokens and r.usage.completion_tokens == 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + 8


def test_streamed_chat_assembles_to_the_greedy_answer(client):
    full = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=10, temperature=0)
    stream = client.chat.completions.create(
        model="tiny",
        messages=CHAT,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert chunks[-1].usage.prompt_tokens == full.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_sixteen_concurrent_async_requests_succeed_in_batches(server, engine):
    import openai

    calls_before = engine.stats.generate_calls

    async def main():
        client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=60)
        async with client:
            return await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="tiny" if i % 4 else "lora-a",
                        messages=[{"role": "user", "content": f"question number {i}"}],
                        max_tokens=6,
                        temperature=0.7 if i % 3 else 0,
                        stream=bool(i % 2),
                    )
                    for i in range(16)
                )
            )

    results = asyncio.run(main())
    assert len(results) == 16
    calls = engine.stats.generate_calls - calls_before
    assert calls < 16  # they were batched (the adapter's requests apart from the base's)
    for r in results:
        if isinstance(r, openai.AsyncStream):
            continue
        assert r.choices[0].finish_reason in ("length", "stop")


def test_completions_echo_logprobs_in_the_legacy_shape(client, engine):
    prompt = "the quick brown fox jumps"
    r = client.completions.create(
        model="tiny", prompt=prompt, max_tokens=0, echo=True, logprobs=1, temperature=0
    )
    choice = r.choices[0]
    assert r.object == "text_completion" and choice.text == prompt
    ids = engine.tokenizer(prompt)["input_ids"]
    lp = choice.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == len(ids)
    assert "".join(lp.tokens) == prompt
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(isinstance(x, float) and x <= 0 for x in lp.token_logprobs[1:])
    assert all(len(t) == 1 for t in lp.top_logprobs[1:])
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
    assert r.usage.prompt_tokens == len(ids) and r.usage.completion_tokens == 0
    # lm-evaluation-harness' loglikelihood request: token ids, echo, logprobs=1, max_tokens=1
    r2 = client.completions.create(
        model="tiny", prompt=ids, max_tokens=1, echo=True, logprobs=1, temperature=0
    )
    lp2 = r2.choices[0].logprobs
    assert len(lp2.token_logprobs) == len(ids) + 1
    assert lp2.token_logprobs[1 : len(ids)] == pytest.approx(lp.token_logprobs[1:], abs=1e-4)
    # several prompts in one request: one choice per prompt, indexed in order
    r3 = client.completions.create(model="tiny", prompt=["a b", "c d e"], max_tokens=2, temperature=0)
    assert [c.index for c in r3.choices] == [0, 1]


def test_models_list_and_adapter_routing(client, engine):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["tiny", "lora-a"]
    via_adapter = client.chat.completions.create(model="lora-a", messages=CHAT, max_tokens=8, temperature=0)
    direct = asyncio.run(
        engine.generate(GenerationRequest(messages=CHAT, max_tokens=8, temperature=0, adapter="lora-a"))
    )
    base = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=8, temperature=0)
    assert via_adapter.choices[0].message.content == direct.choices[0].text
    assert via_adapter.choices[0].message.content != base.choices[0].message.content
    assert via_adapter.model == "lora-a"


# -- raw HTTP: errors ----------------------------------------------------------------------------------


def _chat_body(**fields) -> bytes:
    return json.dumps({"model": "tiny", "messages": CHAT, **fields}).encode()


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "param"),
    [
        ("/v1/chat/completions", b'{"model": "tiny", "messages": [', AUTH, 400, None),
        ("/v1/chat/completions", b"[1, 2]", AUTH, 400, None),
        ("/v1/chat/completions", _chat_body(max_tokens="5"), AUTH, 400, "max_tokens"),
        ("/v1/chat/completions", _chat_body(temperature="hot"), AUTH, 400, "temperature"),
        ("/v1/chat/completions", _chat_body(messages="hi"), AUTH, 400, "messages"),
        ("/v1/chat/completions", json.dumps({"messages": CHAT}).encode(), AUTH, 400, "model"),
        ("/v1/chat/completions", _chat_body(max_tokens=-1), AUTH, 400, "max_tokens"),
        ("/v1/chat/completions", _chat_body(top_logprobs=3), AUTH, 400, "top_logprobs"),
        ("/v1/chat/completions", _chat_body(frequency_penalty=0.5), AUTH, 400, "frequency_penalty"),
        ("/v1/chat/completions", _chat_body(n=1000), AUTH, 400, None),
        ("/v1/chat/completions", _chat_body(model="gpt-9"), AUTH, 404, "model"),
        ("/v1/chat/completions", _chat_body(), {}, 401, None),
        ("/v1/chat/completions", _chat_body(), {"Authorization": "Bearer wrong"}, 401, None),
        ("/v1/models", b"", {"Authorization": "Basic abc"}, 401, None),
        (
            "/v1/completions",
            json.dumps({"model": "tiny", "prompt": [], "max_tokens": 1}).encode(),
            AUTH,
            400,
            "prompt",
        ),
        (
            "/v1/completions",
            json.dumps({"model": "tiny", "prompt": "x", "max_tokens": -3}).encode(),
            AUTH,
            400,
            "max_tokens",
        ),
        ("/v1/nothing-here", b"{}", AUTH, 404, None),
    ],
)
def test_mistakes_get_openai_error_json_and_the_server_keeps_serving(
    server, path, body, headers, status, param
):
    with httpx.Client(base_url=server, timeout=30) as http:
        if path == "/v1/models":
            r = http.get(path, headers=headers)
        else:
            r = http.post(path, content=body, headers={"Content-Type": "application/json", **headers})
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        assert error["type"] == "invalid_request_error"
        if param is not None:
            assert error["param"] == param
        assert http.get("/health").status_code == 200


def test_a_prompt_longer_than_the_context_is_a_400(server):
    long = [{"role": "user", "content": "word " * 3000}]
    with httpx.Client(base_url=server, timeout=30, headers=AUTH) as http:
        r = http.post("/v1/chat/completions", json={"model": "tiny", "messages": long})
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
        r = http.post("/v1/chat/completions", json={"model": "tiny", "messages": long, "stream": True})
        assert r.status_code == 400 and "maximum context length" in r.json()["error"]["message"]
        assert http.get("/health").json() == {"status": "ok"}


# -- disconnects ---------------------------------------------------------------------------------------


def test_a_client_that_disconnects_cancels_its_generation(server, engine):
    before = engine.stats.cancelled_rows
    body = {"model": "tiny", "messages": CHAT, "max_tokens": 1900, "temperature": 0, "stream": True}
    with (
        httpx.Client(base_url=server, timeout=30, headers=AUTH) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        data = [line for line in (next(lines) for _ in range(6)) if line.startswith("data: ")]
        assert data
    assert wait_for(lambda: engine.stats.cancelled_rows > before), "the stream's generation was not stopped"

    before = engine.stats.cancelled_rows
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{server}/v1/chat/completions",
            json={**body, "stream": False},
            headers=AUTH,
            timeout=httpx.Timeout(30, read=0.3),
        )
    assert wait_for(lambda: engine.stats.cancelled_rows > before), "the request's generation was not stopped"
    with httpx.Client(base_url=server, timeout=30) as http:
        assert http.get("/health").status_code == 200


# -- SIGTERM -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(tiny_qwen):
    code = "from swift_core.cli.deploy_cmd import deploy; deploy.main()"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--model", str(tiny_qwen), "--port", "0", "--log_level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, proc.stderr.read()
                continue
            if line.startswith("ready on "):
                url = line.split()[-1]
        assert url and url.startswith("http://127.0.0.1:")
        body = {"model": Path(tiny_qwen).name, "messages": CHAT, "max_tokens": 1200, "temperature": 0}
        body["stream"] = True
        with (
            httpx.Client(base_url=url, timeout=60) as http,
            http.stream("POST", "/v1/chat/completions", json=body) as r,
        ):
            assert r.status_code == 200
            events = r.iter_lines()
            first = next(e for e in events if e.startswith("data: "))  # generation is under way
            assert "chat.completion.chunk" in first
            proc.send_signal(signal.SIGTERM)
            rest = [e for e in events if e.startswith("data: ")]
        assert rest[-1] == "data: [DONE]"
        finish = [json.loads(e[6:]) for e in rest[:-1]]
        assert [c["choices"][0]["finish_reason"] for c in finish if c["choices"]][-1] in ("length", "stop")
        assert proc.wait(timeout=60) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_n_choices_and_seeded_sampling_over_http(client):
    kwargs = {"model": "tiny", "messages": CHAT, "max_tokens": 6, "temperature": 1.0, "n": 2, "seed": 11}
    one = client.chat.completions.create(**kwargs)
    two = client.chat.completions.create(**kwargs)
    assert [c.index for c in one.choices] == [0, 1]
    assert [c.message.content for c in one.choices] == [c.message.content for c in two.choices]
    assert one.usage.completion_tokens == 12


def test_tool_calls_in_the_answer_become_openai_tool_calls():
    from swift_core.serve.openai_api import parse_tool_calls

    text = 'Let me look.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    content, calls = parse_tool_calls(text)
    assert content == "Let me look."
    assert calls[0]["type"] == "function" and calls[0]["function"]["name"] == "weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert parse_tool_calls("no tools here") == ("no tools here", [])
    assert parse_tool_calls("<tool_call>{not json}</tool_call>")[1] == []
