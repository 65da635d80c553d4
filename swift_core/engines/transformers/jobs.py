"""The queue side of the transformers engine: a queued request (`Job`), the stream chunks one
generation step hands to the event loops (`Outbox`), and the engine's counters.

Apart from the engine so that what crosses threads (the worker thread fills an outbox, each
request's loop receives it in one `call_soon_threadsafe`) reads in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from swift_core.engines.protocol import GenerationRequest, GenerationResponse, StreamChunk


@dataclass
class EngineStats:
    """Counters for tests, benchmarks and logs."""

    requests: int = 0
    batches: int = 0
    generate_calls: int = 0
    generated_rows: int = 0
    max_batch_rows: int = 0
    prompt_forwards: int = 0
    cancelled: int = 0  # requests cancelled before they finished
    cancelled_rows: int = 0  # rows the worker stopped mid-generation because of a cancellation
    batch_sizes: dict[int, int] = field(default_factory=dict)  # rows of a generate call -> how many


@dataclass(eq=False)
class Job:
    id: int
    request: GenerationRequest
    prompt_ids: list[int]
    max_tokens: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    queue: asyncio.Queue | None = None  # streaming: StreamChunks, then DONE
    cancelled: bool = False
    emitted: bool = False  # streaming: a chunk was handed over (it cannot be run again unseen)
    grammar: Any = None  # the compiled OutputConstraint (structured outputs), None: free text

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.request.adapter, self.request.seed)

    @property
    def rows(self) -> int:
        return max(1, self.request.n) if self.max_tokens > 0 else 1

    def resolve(self, result: GenerationResponse | None, error: BaseException | None = None) -> None:
        """On the loop: the final answer (after every chunk the worker sent, which came first)."""
        if not self.future.done():
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)
        if self.queue is not None:
            self.queue.put_nowait(DONE)


DONE = object()


class Outbox:
    """Stream chunks of one generation step, handed to the loop(s) in one call."""

    def __init__(self) -> None:
        self.items: list[tuple[Job, StreamChunk]] = []

    def put(self, job: Job, chunk: StreamChunk) -> None:
        if job.queue is not None and not job.cancelled:
            self.items.append((job, chunk))

    def flush(self) -> None:
        if not self.items:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, StreamChunk]]] = {}
        for job, chunk in self.items:
            job.emitted = True
            by_loop.setdefault(job.loop, []).append((job, chunk))
        self.items = []
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(deliver, items)


def deliver(items: list[tuple[Job, StreamChunk]]) -> None:
    for job, chunk in items:
        if not job.cancelled and job.queue is not None:
            job.queue.put_nowait(chunk)


def merge_chunks(a: StreamChunk, b: StreamChunk) -> StreamChunk:
    """Two consecutive increments of one choice as one (a slow reader gets fewer, larger chunks)."""
    logprobs = (
        None if a.logprobs is None and b.logprobs is None else [*(a.logprobs or []), *(b.logprobs or [])]
    )
    return StreamChunk(
        a.index, a.text + b.text, b.finish_reason, logprobs, b.prompt_tokens, b.completion_tokens
    )
