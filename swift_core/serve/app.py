"""The OpenAI-compatible HTTP app over any `InferenceEngine`.

`create_app(engine, config)` builds the FastAPI app; `swift deploy` runs it with uvicorn and tests
run it in-process (httpx) or in a thread. Routes: `GET /health`, `GET /v1/models`,
`POST /v1/chat/completions`, `POST /v1/completions`, `GET /metrics` (Prometheus, `metrics.py`; one
access-log line per request with its `x-request-id`, `access.py`), `GET /openapi.json` (the schema clients and
fuzzers read, request bodies included); with `--enable_weight_updates` also `POST /v1/rollouts` and
`POST /v1/weights` (GRPO's server mode, `rollouts.py`). Every /v1 route and the schema check the API key when one
is configured. Bodies are capped at `--max_request_bytes` (413, `routes.read_body`). Every error is OpenAI's error JSON with the right status; a user's mistake is never a
500. A client that disconnects cancels its generation: the handler watches
`request.is_disconnected()` while it waits for the engine and cancels the engine's task.

This module only assembles the app; the parts live next to it:

- `routes.py`: `OpenAIServer`, one method per route and per streamed answer;
- `streaming.py`: SSE framing, merging engine streams, watching the client;
- `encoders.py`: engine chunks and results as OpenAI bodies;
- `errors.py`: exceptions as OpenAI's error JSON, `OpenAIRoute` (a bug logged once); `auth.py`:
  the API key;
- `settings.py`: `ServeSettings`, what the app reads from the deploy arguments; `limits.py`: the
  request limits (size, OpenAI's value limits); `schema.py`: the published OpenAPI schema.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response

from swift_core.engines.protocol import InferenceEngine
from swift_core.serve.access import AccessLog
from swift_core.serve.errors import OpenAIRoute, error_response, install_error_handlers
from swift_core.serve.metrics import ServerMetrics
from swift_core.serve.routes import OpenAIServer
from swift_core.serve.schema import openapi_schema
from swift_core.serve.settings import ServeSettings
from swift_core.serve.streaming import ClientGone, merge_streams, watch

# Importable from here as before the split (plugins' tests build apps with ServeSettings).
__all__ = [
    "ClientGone",
    "OpenAIServer",
    "ServeSettings",
    "create_app",
    "error_response",
    "merge_streams",
    "watch",
]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def engine_lifespan(engine: InferenceEngine, owns_engine: bool) -> Lifespan:
    """The app's lifespan: with `owns_engine`, shutdown closes the engine (after requests drain).

    An app over an engine its caller keeps (tests, plugins' benches) must leave it open.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            await engine.close()

    return lifespan


def v1_router(server: OpenAIServer) -> APIRouter:
    """The /v1 routes, each behind the API key check."""
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(server.check_key)], route_class=OpenAIRoute)
    v1.add_api_route("/models", server.models, methods=["GET"])
    v1.add_api_route("/chat/completions", server.chat_completions, methods=["POST"])
    v1.add_api_route("/completions", server.completions, methods=["POST"])
    v1.add_api_route("/score", server.score, methods=["POST"])
    return v1


def create_app(engine: InferenceEngine, config: Any = None, *, owns_engine: bool = False) -> FastAPI:
    """The app serving `engine`. With `owns_engine`, app shutdown closes the engine."""
    settings = ServeSettings.from_config(engine, config)
    metrics = ServerMetrics(engine)
    server = OpenAIServer(engine, settings, metrics=metrics)
    lifespan = engine_lifespan(engine, owns_engine)
    app = FastAPI(
        title="Swift",
        description="An OpenAI-compatible API over a Swift inference engine.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # published below, behind the key
        lifespan=lifespan,
    )
    app.router.route_class = OpenAIRoute
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    app.add_middleware(AccessLog, metrics=metrics)
    app.add_api_route("/health", server.health, methods=["GET"])

    async def prometheus() -> Response:
        """Prometheus' text format; without the key, like /health (counts only, as vLLM's /metrics)."""
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_api_route("/metrics", prometheus, methods=["GET"], include_in_schema=False)
    app.include_router(v1_router(server))
    if settings.enable_weight_updates:  # server mode for online RL (rollouts.py)
        from swift_core.serve.rollouts import rollout_router

        app.include_router(rollout_router(server))

    async def schema() -> dict[str, Any]:
        return openapi_schema(app)

    app.add_api_route(
        "/openapi.json",
        schema,
        methods=["GET"],
        dependencies=[Depends(server.check_key)],
        include_in_schema=False,
    )
    return app
