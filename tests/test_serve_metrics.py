"""Operations (issue 16): Prometheus /metrics counters move with traffic, one access-log line per
request with its x-request-id (echoed to the client), errors counted by status and code."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import httpx
import pytest

from swift_core.engines.protocol import EngineConfig

KEY = "sk-metrics"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = [{"role": "user", "content": "hello"}]


class Settings:
    api_key = KEY
    served_model_name = "tiny"
    max_new_tokens = 8


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


def scrape(url: str) -> dict[str, float]:
    """Every sample of /metrics as name{labels} -> value."""
    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def test_counters_move_with_traffic(server):
    before = scrape(server)
    body = {"model": "tiny", "messages": CHAT, "max_tokens": 5, "temperature": 0}
    for _ in range(3):
        assert (
            httpx.post(f"{server}/v1/chat/completions", json=body, headers=AUTH, timeout=60).status_code
            == 200
        )
    with httpx.stream(
        "POST", f"{server}/v1/chat/completions", json={**body, "stream": True}, headers=AUTH, timeout=60
    ) as r:
        assert r.status_code == 200 and "[DONE]" in "".join(r.iter_text())
    wrong = httpx.post(
        f"{server}/v1/chat/completions", json={**body, "model": "nope"}, headers=AUTH, timeout=60
    )
    assert wrong.status_code == 404
    ok = 'swift_requests_total{route="/v1/chat/completions",status="200"}'
    notfound = 'swift_errors_total{code="model_not_found",status="404"}'
    deadline = time.monotonic() + 10  # a request is counted once its response has gone out
    while True:
        after = scrape(server)
        if (delta(before, after, ok), delta(before, after, notfound)) == (
            4,
            1,
        ) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert delta(before, after, ok) == 4
    assert delta(before, after, notfound) == 1
    assert delta(before, after, "swift_generation_tokens_total") == 4 * 5
    assert delta(before, after, "swift_prompt_tokens_total") > 0
    assert delta(before, after, "swift_time_to_first_token_seconds_count") == 1  # the streamed one
    assert delta(before, after, "swift_batches_total") == 4
    assert delta(before, after, 'swift_batch_size_bucket{le="1"}') == 4
    assert after["swift_queue_depth"] == 0 and after["swift_requests_in_flight"] == 1  # the scrape itself


def lines_of(caplog, rid: str) -> list[str]:
    return [
        m
        for rec in caplog.records
        if rec.name == "swift.serve.access" and f"rid={rid}" in (m := rec.getMessage())
    ]


def test_one_access_line_per_request_with_its_request_id(server, caplog):
    body = {"model": "nope", "messages": CHAT, "max_tokens": 2}
    headers = {**AUTH, "x-request-id": "abc-123"}
    with caplog.at_level(logging.INFO, logger="swift.serve.access"):
        r = httpx.post(f"{server}/v1/chat/completions", json=body, headers=headers, timeout=60)
        mine = httpx.get(f"{server}/health", timeout=30)
        # the line is written once the response has gone out: wait for it (the server is a thread)
        ids = ["abc-123", mine.headers["x-request-id"]]
        deadline = time.monotonic() + 10
        while not all(lines_of(caplog, i) for i in ids) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert r.status_code == 404 and r.headers["x-request-id"] == "abc-123"
    assert re.fullmatch(r"[0-9a-f]{32}", mine.headers["x-request-id"])  # made up when not given
    (wrong,) = lines_of(caplog, ids[0])
    assert '"POST /v1/chat/completions" 404' in wrong and "code=model_not_found" in wrong
    (health,) = lines_of(caplog, ids[1])
    assert '"GET /health" 200' in health


def test_an_unsafe_request_id_is_replaced(server):
    r = httpx.get(f"{server}/health", headers={"x-request-id": "bad id\twith spaces"}, timeout=30)
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
