"""The OpenAI routes over one engine: a method per route, per streamed answer, per shared check.

`OpenAIServer` holds what every route reads (the engine, `ServeSettings`, the start time that
/v1/models reports), so each route can be called and tested on its own; `app.create_app` only
wires these methods to URLs. Engine exceptions become OpenAI errors here (`engine_error`);
a client that disconnects while its answer is computed gets 499 and its generation is cancelled.
Bodies are read within `--max_request_bytes` (`read_body`: 413 from the Content-Length header
before anything is read, else while a chunked body arrives). Not Starlette's body limit: that one
answers a declared oversize body in plain text, and OpenAI's clients expect OpenAI's error JSON.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from swift_core.engines.protocol import GenerationRequest, InferenceEngine
from swift_core.serve import openai_api as api
from swift_core.serve.auth import check_api_key
from swift_core.serve.encoders import ChatChunks, CompletionChunks, completion_response
from swift_core.serve.errors import engine_error
from swift_core.serve.metrics import ServerMetrics
from swift_core.serve.openai_api import OpenAIError
from swift_core.serve.settings import ServeSettings
from swift_core.serve.streaming import ClientGone, event_stream, merge_streams, watch
from swift_core.templates.tool_calls import HERMES, ToolCallFormat


def too_large(limit: int) -> OpenAIError:
    return OpenAIError(
        413,
        f"The request body is larger than this server accepts ({limit} bytes; swift deploy "
        "--max_request_bytes sets the limit).",
        code="request_too_large",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes: from the
    Content-Length header before anything is read, else while it arrives (chunked uploads)."""
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


# The status nginx uses for "client closed request": nobody reads it, but logs show why it ended.
CLIENT_CLOSED = 499


class OpenAIServer:
    """The handlers of `GET /health`, `GET /v1/models`, `POST /v1/chat/completions` and
    `POST /v1/completions` for `engine`."""

    def __init__(
        self,
        engine: InferenceEngine,
        settings: ServeSettings,
        started: int | None = None,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics  # tokens and time to first token (None: not counted)
        self.settings = settings
        self.started = int(time.time()) if started is None else started

    def check_key(self, request: Request) -> None:
        """The dependency of every /v1 route: 401 unless the configured key (if any) is sent."""
        check_api_key(self.settings.api_key, request.headers.get("authorization", ""))

    def adapter_for(self, model: str) -> str | None:
        """The adapter a request's `model` names: None for the base model (any of its names), 404
        for an unknown name."""
        if model in self.settings.model_names:
            return None
        if model in self.engine.adapter_names():
            return model
        raise OpenAIError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")

    async def body(self, request: Request) -> bytes:
        """The request's body within --max_request_bytes (413 beyond)."""
        return await read_body(request, self.settings.limits.max_request_bytes)

    async def health(self) -> dict[str, str]:
        """Liveness for load balancers: no key, no engine call."""
        return {"status": "ok"}

    async def models(self) -> dict[str, Any]:
        """The base model, its aliases (each with the model as its root), then each adapter with the
        base as its parent."""
        name = self.settings.served_model_name
        data = [{"id": name, "object": "model", "created": self.started, "owned_by": "swift"}]
        data += [
            {"id": alias, "object": "model", "created": self.started, "owned_by": "swift", "root": name}
            for alias in self.settings.model_names[1:]
        ]
        data += [
            {"id": adapter, "object": "model", "created": self.started, "owned_by": "swift", "parent": name}
            for adapter in self.engine.adapter_names()
        ]
        return {"object": "list", "data": data}

    async def chat_completions(self, request: Request) -> Response:
        """One chat answer (with `n` choices), whole or streamed."""
        arrived = time.perf_counter()
        req = api.parse_body(api.ChatCompletionRequest, await self.body(request))
        adapter = self.adapter_for(req.model)
        fmt = self.tool_format()
        gen = api.chat_to_request(req, adapter, self.settings.default_max_tokens, self.settings.limits, fmt)
        rid = api.new_id("chatcmpl")
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return await self.stream_chat(request, gen, rid, req.model, include_usage, arrived)
        try:
            response = await watch(request, self.engine.generate(gen))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
        except OpenAIError:
            raise
        except Exception as exc:
            raise engine_error(exc) from None
        self.count(response.prompt_tokens, response.completion_tokens)
        return JSONResponse(api.chat_response(rid, req.model, response, tools=bool(gen.tools), fmt=fmt))

    def tool_format(self) -> ToolCallFormat:
        """The engine's tool-call syntax (Hermes for an engine object that does not say)."""
        return getattr(self.engine, "tool_call_format", HERMES)

    def count(self, prompt_tokens: int, completion_tokens: int) -> None:
        if self.metrics is not None:
            self.metrics.count_tokens(prompt_tokens, completion_tokens)

    def engine_stream(self, gen: GenerationRequest, arrived: float | None) -> Any:
        """The engine's stream of `gen`, metered (time to first token, tokens) when metrics are on."""
        stream = self.engine.stream(gen)
        if self.metrics is None:
            return stream
        return self.metrics.metered(stream, time.perf_counter() if arrived is None else arrived)

    async def stream_chat(
        self,
        request: Request,
        gen: GenerationRequest,
        rid: str,
        model: str,
        include_usage: bool,
        arrived: float | None = None,
    ) -> Response:
        """The chat answer as server-sent `chat.completion.chunk` events."""
        fmt = self.tool_format() if gen.tools else None
        encoder = ChatChunks(rid, api.now(), model, gen.n, include_usage, fmt)
        return await event_stream(request, merge_streams([self.engine_stream(gen, arrived)]), encoder)

    async def score(self, request: Request) -> Response:
        """A reward model's scores of (prompt, answer) pairs or whole conversations (scoring.py)."""
        from swift_core.serve.scoring import ScoreRequest, conversations, score_response

        req = api.parse_body(ScoreRequest, await self.body(request))
        if self.adapter_for(req.model) is not None or not getattr(self.engine.capabilities, "scores", False):
            raise OpenAIError(
                400,
                f"The model `{req.model}` writes answers; /v1/score needs a reward model (swift rlhf --rlhf_type rm).",
                param="model",
                code="model_not_supported",
            )
        convs = conversations(req)
        try:
            scores = await watch(request, self.engine.score(convs))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
        except Exception as exc:
            raise engine_error(exc) from None
        return JSONResponse(score_response(req.model, scores))

    async def completions(self, request: Request) -> Response:
        """The legacy completions API: one engine request per prompt, gathered, whole or streamed."""
        arrived = time.perf_counter()
        req = api.parse_body(api.CompletionRequest, await self.body(request))
        adapter = self.adapter_for(req.model)
        gens = api.completion_to_requests(
            req, adapter, self.settings.default_max_tokens, self.settings.limits
        )
        rid = api.new_id("cmpl")
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return await self.stream_completions(request, gens, rid, req.model, include_usage, arrived)
        try:
            responses = await watch(request, asyncio.gather(*(self.engine.generate(g) for g in gens)))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
        except Exception as exc:
            raise engine_error(exc) from None
        self.count(sum(r.prompt_tokens for r in responses), sum(r.completion_tokens for r in responses))
        return JSONResponse(completion_response(rid, req.model, gens, responses))

    async def stream_completions(
        self,
        request: Request,
        gens: list[GenerationRequest],
        rid: str,
        model: str,
        include_usage: bool,
        arrived: float | None = None,
    ) -> Response:
        """All prompts' answers, merged as they come, as server-sent `text_completion` events."""
        encoder = CompletionChunks(rid, api.now(), model, gens, include_usage)
        return await event_stream(
            request, merge_streams([self.engine_stream(g, arrived) for g in gens]), encoder
        )
