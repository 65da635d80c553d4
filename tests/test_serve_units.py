"""The server's parts on their own, without a model or HTTP: key check, errors, encoders, streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from swift_core.engines.protocol import GenerationRequest, PromptTooLong, StreamChunk, UnsupportedRequest
from swift_core.errors import SwiftError
from swift_core.serve.auth import check_api_key
from swift_core.serve.encoders import ChatChunks, CompletionChunks
from swift_core.serve.errors import engine_error, error_response
from swift_core.serve.openai_api import OpenAIError
from swift_core.serve.streaming import (
    END,
    SSE_DONE,
    ClientGone,
    first_chunk,
    merge_streams,
    sse_events,
    watch,
)


class FakeRequest:
    """What the streaming helpers ask of a request: whether its client is gone."""

    def __init__(self, gone: bool = False) -> None:
        self.gone = gone

    async def is_disconnected(self) -> bool:
        return self.gone


class Recorder:
    """An engine stream that records whether it ran to the end or was closed early."""

    def __init__(self, chunks: list[StreamChunk], fail: Exception | None = None, hang: bool = False):
        self.chunks, self.fail, self.hang = chunks, fail, hang
        self.closed = False

    async def stream(self) -> AsyncIterator[StreamChunk]:
        try:
            for chunk in self.chunks:
                await asyncio.sleep(0)
                yield chunk
            if self.fail is not None:
                raise self.fail
            if self.hang:
                await asyncio.sleep(3600)
        finally:
            self.closed = True


async def drain(agen: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in agen]


# -- key check and errors ---------------------------------------------------------------------------


def test_api_key_check():
    check_api_key(None, "")  # no key configured: everyone passes
    check_api_key("sk-1", "Bearer sk-1")
    check_api_key("sk-1", "bearer  sk-1 ")
    for header, message in [
        ("", "You didn't provide an API key"),
        ("Basic sk-1", "You didn't provide an API key"),
        ("Bearer ", "You didn't provide an API key"),
        ("Bearer sk-2", "Incorrect API key provided."),
    ]:
        with pytest.raises(OpenAIError) as info:
            check_api_key("sk-1", header)
        assert info.value.status == 401 and info.value.code == "invalid_api_key"
        assert info.value.message.startswith(message)


def test_engine_errors_map_to_statuses_a_client_can_act_on():
    too_long = engine_error(PromptTooLong("too long"))
    assert (too_long.status, too_long.code) == (400, "context_length_exceeded")
    assert engine_error(UnsupportedRequest("no n>1")).status == 400
    unavailable = engine_error(SwiftError("down"))
    assert (unavailable.status, unavailable.type, unavailable.code) == (503, "server_error", "unavailable")
    bug = engine_error(KeyError("secret"))
    assert bug.status == 500 and "secret" not in bug.message and "KeyError" in bug.message


def test_error_response_is_openai_json_and_401_names_the_scheme():
    response = error_response(OpenAIError(401, "no key", code="invalid_api_key"))
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert json.loads(response.body) == {
        "error": {
            "message": "no key",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert "www-authenticate" not in error_response(OpenAIError(404, "nope")).headers


# -- encoders ---------------------------------------------------------------------------------------


def test_chat_chunks_open_with_roles_then_deltas_finishes_and_usage():
    enc = ChatChunks("id", 7, "m", n=2, include_usage=True)
    (opening,) = enc.opening()
    assert [c["delta"] for c in opening["choices"]] == [{"role": "assistant", "content": ""}] * 2
    assert opening["usage"] is None
    assert [b["choices"] for b in enc.events(0, StreamChunk(0, "hi", None, None, 3, 1))] == [
        [{"index": 0, "delta": {"content": "hi"}, "logprobs": None, "finish_reason": None}]
    ]
    assert list(enc.events(0, StreamChunk(1, "", None, None, 3, 0))) == []  # nothing new
    bodies = list(enc.events(0, StreamChunk(1, "yo", "stop", None, 3, 2)))
    assert [b["choices"][0]["finish_reason"] for b in bodies] == [None, "stop"]
    (final,) = enc.closing()
    assert final["choices"] == [] and final["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 3,
        "total_tokens": 6,
    }
    assert list(ChatChunks("id", 7, "m", n=1, include_usage=False).closing()) == []


def test_completion_chunks_number_choices_prompt_major_and_echo_once():
    gens = [GenerationRequest(prompt="P0", n=2, echo=True), GenerationRequest(prompt=[1, 2], n=2, echo=True)]
    enc = CompletionChunks("id", 7, "m", gens, include_usage=True)
    assert list(enc.opening()) == []

    def choice(p: int, chunk: StreamChunk) -> list[dict[str, Any]]:
        return [b["choices"][0] for b in enc.events(p, chunk)]

    assert choice(0, StreamChunk(1, "a", None, None, 2, 1)) == [
        {"index": 1, "text": "P0a", "logprobs": None, "finish_reason": None}
    ]
    assert choice(0, StreamChunk(1, "b", "length", None, 2, 2))[0]["text"] == "b"  # echoed once only
    assert choice(1, StreamChunk(0, "c", None, None, 5, 1)) == [
        {"index": 2, "text": "c", "logprobs": None, "finish_reason": None}
    ]
    assert choice(1, StreamChunk(1, "", None, None, 5, 0)) == []  # token-id prompt echoes ''
    (final,) = enc.closing()
    assert final["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


# -- streams ----------------------------------------------------------------------------------------


def test_merge_streams_tags_chunks_and_closing_it_closes_every_stream():
    async def go() -> None:
        a, b = Recorder([StreamChunk(0, "a")]), Recorder([StreamChunk(0, "b")], hang=True)
        merged = merge_streams([a.stream(), b.stream()])
        got = [await merged.__anext__(), await merged.__anext__()]
        assert sorted((i, c.text) for i, c in got) == [(0, "a"), (1, "b")]
        await merged.aclose()  # type: ignore[attr-defined]
        assert a.closed and b.closed  # the hanging one was cancelled

        failing = Recorder([StreamChunk(0, "x")], fail=SwiftError("engine died"))
        other = Recorder([], hang=True)
        with pytest.raises(SwiftError):
            await drain(merge_streams([failing.stream(), other.stream()]))
        assert other.closed

    asyncio.run(go())


def test_watch_cancels_the_work_of_a_client_that_left():
    async def go() -> None:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def work() -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        request = FakeRequest()
        task = asyncio.ensure_future(watch(request, work()))  # type: ignore[arg-type]
        await started.wait()
        request.gone = True
        with pytest.raises(ClientGone):
            await task
        assert cancelled.is_set()
        assert await watch(FakeRequest(), asyncio.sleep(0, "done")) == "done"  # type: ignore[arg-type]

    asyncio.run(go())


def test_first_chunk_turns_an_engine_refusal_into_a_4xx_and_closes_the_stream():
    async def go() -> None:
        refused = Recorder([], fail=PromptTooLong("too long"))
        stream = merge_streams([refused.stream()])
        with pytest.raises(OpenAIError) as info:
            await first_chunk(FakeRequest(), stream)  # type: ignore[arg-type]
        assert info.value.status == 400 and refused.closed
        empty = merge_streams([Recorder([]).stream()])
        assert await first_chunk(FakeRequest(), empty) is END  # type: ignore[arg-type]

    asyncio.run(go())


def test_sse_events_frame_bodies_and_report_late_errors_in_the_stream():
    async def events(recorder: Recorder) -> list[str]:
        stream = merge_streams([recorder.stream()])
        request = FakeRequest()
        first = await first_chunk(request, stream)  # type: ignore[arg-type]
        encoder = ChatChunks("id", 7, "m", n=1, include_usage=False)
        return await drain(sse_events(request, stream, first, encoder))  # type: ignore[arg-type]

    ok = Recorder([StreamChunk(0, "hé"), StreamChunk(0, "", "stop")])
    out = asyncio.run(events(ok))
    assert out[-1] == SSE_DONE and ok.closed
    assert all(e.startswith("data: ") and e.endswith("\n\n") for e in out)
    assert '"hé"' in out[1]  # non-ASCII text is sent as is
    assert [json.loads(e[6:])["choices"][0]["finish_reason"] for e in out[:-1]] == [None, None, "stop"]

    broken = Recorder([StreamChunk(0, "a")], fail=RuntimeError("bug"))
    out = asyncio.run(events(broken))
    assert json.loads(out[-2][6:])["error"]["type"] == "server_error" and out[-1] == SSE_DONE
    assert broken.closed
