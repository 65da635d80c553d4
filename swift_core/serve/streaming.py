"""Server-sent events over engine streams, and the client watch that cancels abandoned work.

A streamed answer is refused with a plain 4xx as long as no header has gone out, so the first
chunk is awaited before the response starts (`first_chunk`); after that, errors are reported in
the stream itself. A client that goes away cancels its generation: waits are raced against
`request.is_disconnected()` (`watch`, `WatchedStream`), and closing the merged stream cancels the
engine's streams under it. The route-specific part, turning chunks into OpenAI bodies, is a
`ChunkEncoder` (see `encoders.py`); this module does the framing common to both routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from swift_core.engines.protocol import StreamChunk
from swift_core.serve.errors import engine_error

# How often a waiting handler checks whether its client is still there (seconds).
DISCONNECT_POLL_S = 0.1

# The last event of every stream, as OpenAI sends it.
SSE_DONE = "data: [DONE]\n\n"

# What `next_or_end` returns once a stream is exhausted (a chunk is never this object).
END: Any = object()


class ClientGone(Exception):
    """The client disconnected while its request was being worked on."""


class ChunkEncoder(Protocol):
    """The bodies of one streamed route: what comes before, for, and after the engine's chunks."""

    def opening(self) -> Iterable[dict[str, Any]]: ...

    def events(self, stream_index: int, chunk: StreamChunk) -> Iterable[dict[str, Any]]: ...

    def closing(self) -> Iterable[dict[str, Any]]: ...


async def watch(request: Request, work: Awaitable[Any]) -> Any:
    """Await `work`, cancelling it when the client disconnects (raises ClientGone)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientGone()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def next_or_end(agen: AsyncIterator[Any]) -> Any:
    """The next item of `agen`, or END: an awaitable that `watch` can wrap in a task."""
    try:
        return await agen.__anext__()
    except StopAsyncIteration:
        return END


async def _single(stream: AsyncIterator[StreamChunk]) -> AsyncIterator[tuple[int, StreamChunk]]:
    """One stream, tagged 0, without the tasks and queue that merging needs."""
    try:
        async for chunk in stream:
            yield 0, chunk
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def _merged(streams: list[AsyncIterator[StreamChunk]]) -> AsyncIterator[tuple[int, StreamChunk]]:
    """Several streams, each pumped by its own task into one queue; the first error ends all."""
    queue: asyncio.Queue[tuple[int, Any, BaseException | None]] = asyncio.Queue()

    async def pump(i: int, agen: AsyncIterator[StreamChunk]) -> None:
        try:
            async for chunk in agen:
                queue.put_nowait((i, chunk, None))
            queue.put_nowait((i, END, None))
        except Exception as exc:
            queue.put_nowait((i, END, exc))

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
    try:
        open_streams = len(tasks)
        while open_streams:
            i, chunk, exc = await queue.get()
            if exc is not None:
                raise exc
            if chunk is END:
                open_streams -= 1
                continue
            yield i, chunk
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def merge_streams(streams: list[AsyncIterator[StreamChunk]]) -> AsyncIterator[tuple[int, StreamChunk]]:
    """(stream index, chunk) from several engine streams, as they come.

    Closing the result closes (or cancels) every stream under it, which cancels the engine's work.
    """
    return _single(streams[0]) if len(streams) == 1 else _merged(streams)


def sse(data: Any) -> str:
    """One server-sent event carrying `data` as JSON (non-ASCII text kept as is)."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def first_chunk(request: Request, stream: AsyncIterator[Any]) -> Any:
    """The first chunk before any header goes out, so a refused request is a plain 4xx.

    The wait may be long (queued behind running batches): the client is watched meanwhile. None
    when the client left; the stream is closed then, and on an error (raised as an OpenAIError).
    """
    try:
        return await watch(request, next_or_end(stream))
    except ClientGone:
        await stream.aclose()  # type: ignore[attr-defined]
        return None
    except Exception as exc:
        await stream.aclose()  # type: ignore[attr-defined]
        raise engine_error(exc) from None


class WatchedStream:
    """The chunks of a started stream; the client is checked at most every DISCONNECT_POLL_S.

    Checking on every chunk would cost a receive per token; Starlette's StreamingResponse also
    listens for the disconnect and cancels the stream (and with it the engine's job) while it
    waits for a chunk, so this check only catches clients that leave while chunks keep coming.
    """

    def __init__(self, request: Request, stream: AsyncIterator[Any]) -> None:
        self.request = request
        self.stream = stream
        self.last_check = time.monotonic()

    async def next(self) -> Any:
        """The next item (or END); raises ClientGone when the client has left."""
        item = await next_or_end(self.stream)
        now = time.monotonic()
        if now - self.last_check >= DISCONNECT_POLL_S:
            self.last_check = now
            if await self.request.is_disconnected():
                raise ClientGone()
        return item


async def sse_events(
    request: Request, stream: AsyncIterator[Any], first: Any, encoder: ChunkEncoder
) -> AsyncIterator[str]:
    """The events of a started stream: `encoder`'s bodies, then `[DONE]`; the stream is closed.

    The headers (200) are sent by now, so an error is reported as an error event followed by
    `[DONE]`; a client that left gets nothing more.
    """
    watched = WatchedStream(request, stream)
    try:
        for body in encoder.opening():
            yield sse(body)
        item = first
        while item is not END:
            index, chunk = item
            for body in encoder.events(index, chunk):
                yield sse(body)
            item = await watched.next()
        for body in encoder.closing():
            yield sse(body)
        yield SSE_DONE
    except ClientGone:
        return
    except Exception as exc:  # after the headers went out: report in the stream
        yield sse(engine_error(exc).body())
        yield SSE_DONE
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def event_stream(request: Request, stream: AsyncIterator[Any], encoder: ChunkEncoder) -> Response:
    """The streamed response of `stream`: 499 (no body) when the client left before the first chunk."""
    first = await first_chunk(request, stream)
    if first is None:
        return Response(status_code=499)
    return StreamingResponse(
        sse_events(request, stream, first, encoder),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )
