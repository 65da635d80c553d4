"""Prometheus metrics of one server (`GET /metrics`, prometheus_client's text format).

Each app has its own registry (several apps in one process, as in tests, do not share counters).
What is counted where:

- the access middleware (`access.py`): requests by route and status, errors by status and OpenAI
  error code, request duration;
- the routes: prompt and generated tokens of every answer, time to first token of streamed ones;
- the engine, read when scraped (`InferenceEngine.metrics()`): queue depth, batches and the rows
  of each (the transformers engine; an engine without such numbers reports none).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from swift_core.engines.protocol import InferenceEngine, StreamChunk

# Batch sizes (rows of one generate call) as histogram buckets.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServerMetrics:
    """The counters of one app, and the collector that reads its engine at scrape time."""

    def __init__(self, engine: InferenceEngine) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("swift_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.errors = Counter("swift_errors", "Error answers", ["status", "code"], registry=r)
        self.duration = Histogram("swift_request_duration_seconds", "Request duration", ["route"], registry=r)
        self.in_flight = Gauge("swift_requests_in_flight", "Requests being answered", registry=r)
        self.prompt_tokens = Counter("swift_prompt_tokens", "Prompt tokens of answered requests", registry=r)
        self.generation_tokens = Counter("swift_generation_tokens", "Tokens generated", registry=r)
        self.ttft = Histogram(
            "swift_time_to_first_token_seconds",
            "From the request's arrival to its first streamed token",
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        r.register(_EngineCollector(engine))

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def count_tokens(self, prompt: int, generated: int) -> None:
        self.prompt_tokens.inc(prompt)
        self.generation_tokens.inc(generated)

    async def metered(self, stream: AsyncIterator[StreamChunk], started: float) -> AsyncIterator[StreamChunk]:
        """`stream`, observing its time to first token and counting its tokens when it ends."""
        first = True
        prompt, generated = 0, {}
        try:
            async for chunk in stream:
                if first and (chunk.text or chunk.completion_tokens):
                    self.ttft.observe(time.perf_counter() - started)
                    first = False
                prompt = chunk.prompt_tokens or prompt
                generated[chunk.index] = max(generated.get(chunk.index, 0), chunk.completion_tokens)
                yield chunk
        finally:
            self.count_tokens(prompt, sum(generated.values()))


class _EngineCollector:
    """The engine's own numbers (`InferenceEngine.metrics()`), read at every scrape."""

    def __init__(self, engine: InferenceEngine) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        numbers = getattr(self.engine, "metrics", dict)()  # duck-typed engines may have none
        if "queue_depth" in numbers:
            yield GaugeMetricFamily(
                "swift_queue_depth", "Rows waiting for a batch", value=numbers["queue_depth"]
            )
        if "batches" in numbers:
            yield CounterMetricFamily(
                "swift_batches", "Batches (generate calls) run", value=numbers["batches"]
            )
        sizes: dict[int, int] = numbers.get("batch_sizes", {})
        if sizes or "batches" in numbers:
            buckets, total = [], 0
            for bound in BATCH_BUCKETS:
                buckets.append((str(bound), sum(c for s, c in sizes.items() if s <= bound)))
            buckets.append(("+Inf", sum(sizes.values())))
            total = sum(s * c for s, c in sizes.items())
            yield HistogramMetricFamily(
                "swift_batch_size", "Rows per batch (generate call)", buckets=buckets, sum_value=total
            )
