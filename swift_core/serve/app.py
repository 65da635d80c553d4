"""The OpenAI-compatible HTTP app over any `InferenceEngine`.

`create_app(engine, config)` builds the FastAPI app; `swift deploy` runs it with uvicorn and tests
run it in-process (httpx) or in a thread. Routes: `GET /health`, `GET /v1/models`,
`POST /v1/chat/completions`, `POST /v1/completions`. Every /v1 route checks the API key when one is
configured. Every error is OpenAI's error JSON with the right status; a user's mistake is never a
500. A client that disconnects cancels its generation: the handler watches
`request.is_disconnected()` while it waits for the engine and cancels the engine's task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from swift_core.engines.protocol import (
    GenerationRequest,
    InferenceEngine,
    PromptTooLong,
    StreamChunk,
    UnsupportedRequest,
)
from swift_core.errors import SwiftError
from swift_core.serve import openai_api as api
from swift_core.serve.openai_api import OpenAIError

logger = logging.getLogger(__name__)

# How often a waiting handler checks whether its client is still there (seconds).
DISCONNECT_POLL_S = 0.1


@dataclass
class ServeSettings:
    """What the app reads from the deploy arguments (any object with these attributes will do)."""

    served_model_name: str
    api_key: str | None = None
    default_max_tokens: int | None = None

    @classmethod
    def from_config(cls, engine: InferenceEngine, config: Any) -> ServeSettings:
        return cls(
            served_model_name=getattr(config, "served_model_name", None) or engine.model_name or "model",
            api_key=getattr(config, "api_key", None) or None,
            default_max_tokens=getattr(config, "max_new_tokens", None),
        )


class ClientGone(Exception):
    """The client disconnected while its request was being worked on."""


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


_END = object()


async def _next(agen: AsyncIterator[Any]) -> Any:
    try:
        return await agen.__anext__()
    except StopAsyncIteration:
        return _END


def merge_streams(streams: list[AsyncIterator[StreamChunk]]) -> AsyncIterator[tuple[int, StreamChunk]]:
    """(stream index, chunk) from several engine streams, as they come."""

    async def merged() -> AsyncIterator[tuple[int, StreamChunk]]:
        if len(streams) == 1:
            try:
                async for chunk in streams[0]:
                    yield 0, chunk
            finally:
                await streams[0].aclose()  # type: ignore[attr-defined]
            return
        queue: asyncio.Queue[tuple[int, Any, BaseException | None]] = asyncio.Queue()

        async def pump(i: int, agen: AsyncIterator[StreamChunk]) -> None:
            try:
                async for chunk in agen:
                    queue.put_nowait((i, chunk, None))
                queue.put_nowait((i, _END, None))
            except Exception as exc:
                queue.put_nowait((i, _END, exc))

        tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
        try:
            open_streams = len(tasks)
            while open_streams:
                i, chunk, exc = await queue.get()
                if exc is not None:
                    raise exc
                if chunk is _END:
                    open_streams -= 1
                    continue
                yield i, chunk
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return merged()


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _engine_error(exc: BaseException) -> OpenAIError:
    if isinstance(exc, PromptTooLong):
        return OpenAIError(400, str(exc), code="context_length_exceeded")
    if isinstance(exc, UnsupportedRequest):
        return OpenAIError(400, str(exc))
    if isinstance(exc, SwiftError):
        return OpenAIError(503, str(exc), type="server_error", code="unavailable")
    logger.exception("request failed", exc_info=exc)
    return OpenAIError(500, f"the server failed on this request: {type(exc).__name__}", type="server_error")


def error_response(exc: OpenAIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def create_app(engine: InferenceEngine, config: Any = None, *, owns_engine: bool = False) -> FastAPI:
    """The app serving `engine`. With `owns_engine`, app shutdown closes the engine."""
    settings = ServeSettings.from_config(engine, config)
    started = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:
            await engine.close()

    app = FastAPI(title="Swift", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine = engine
    app.state.settings = settings

    @app.exception_handler(OpenAIError)
    async def _openai_error(request: Request, exc: OpenAIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = (
            f"Unknown request URL: {request.method} {request.url.path}."
            if exc.status_code == 404
            else str(exc.detail)
        )
        code = "unknown_url" if exc.status_code == 404 else None
        return error_response(OpenAIError(exc.status_code, message, code=code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(OpenAIError(400, f"Invalid request: {exc.errors()[:1]}"))

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(_engine_error(exc))

    def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise OpenAIError(
                401,
                "You didn't provide an API key. Pass it in the Authorization header (Authorization: Bearer YOUR_KEY).",
                code="invalid_api_key",
            )
        if not secrets.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")

    def adapter_for(model: str) -> str | None:
        if model == settings.served_model_name:
            return None
        if model in engine.adapter_names():
            return model
        raise OpenAIError(404, f"The model `{model}` does not exist.", param="model", code="model_not_found")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_key)])

    @v1.get("/models")
    async def models() -> dict[str, Any]:
        data = [
            {"id": settings.served_model_name, "object": "model", "created": started, "owned_by": "swift"}
        ]
        data += [
            {
                "id": name,
                "object": "model",
                "created": started,
                "owned_by": "swift",
                "parent": settings.served_model_name,
            }
            for name in engine.adapter_names()
        ]
        return {"object": "list", "data": data}

    @v1.post("/chat/completions")
    async def chat_completions(request: Request) -> Response:
        req = api.parse_body(api.ChatCompletionRequest, await request.body())
        adapter = adapter_for(req.model)
        gen = api.chat_to_request(req, adapter, settings.default_max_tokens)
        rid = api.new_id("chatcmpl")
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return await _stream_chat(request, gen, rid, req.model, include_usage)
        try:
            response = await watch(request, engine.generate(gen))
        except ClientGone:
            return Response(status_code=499)
        except OpenAIError:
            raise
        except Exception as exc:
            raise _engine_error(exc) from None
        return JSONResponse(api.chat_response(rid, req.model, response, tools=bool(gen.tools)))

    async def _stream_chat(
        request: Request, gen: GenerationRequest, rid: str, model: str, include_usage: bool
    ) -> Response:
        created = api.now()
        stream = merge_streams([engine.stream(gen)])
        first = await _first_chunk(request, stream)
        if first is None:
            return Response(status_code=499)

        async def events() -> AsyncIterator[str]:
            last_check = [time.monotonic()]
            completion = [0] * gen.n
            prompt_tokens = 0
            try:
                yield _sse(
                    api.chat_chunk(
                        rid,
                        created,
                        model,
                        [
                            {
                                "index": i,
                                "delta": {"role": "assistant", "content": ""},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                            for i in range(gen.n)
                        ],
                        include_usage,
                    )
                )
                item = first
                while item is not _END:
                    _, chunk = item
                    prompt_tokens = chunk.prompt_tokens
                    completion[chunk.index] = max(completion[chunk.index], chunk.completion_tokens)
                    if chunk.text or chunk.logprobs:
                        delta = {
                            "index": chunk.index,
                            "delta": {"content": chunk.text},
                            "logprobs": api.chat_logprobs(chunk.logprobs),
                            "finish_reason": None,
                        }
                        yield _sse(api.chat_chunk(rid, created, model, [delta], include_usage))
                    if chunk.finish_reason is not None:
                        end = {
                            "index": chunk.index,
                            "delta": {},
                            "logprobs": None,
                            "finish_reason": chunk.finish_reason,
                        }
                        yield _sse(api.chat_chunk(rid, created, model, [end], include_usage))
                    item = await _next_watched(request, stream, last_check)
                if include_usage:
                    final = api.chat_chunk(rid, created, model, [], False)
                    final["usage"] = api.usage(prompt_tokens, sum(completion))
                    yield _sse(final)
                yield "data: [DONE]\n\n"
            except ClientGone:
                return
            except Exception as exc:  # after the headers went out: report in the stream
                yield _sse(_engine_error(exc).body())
                yield "data: [DONE]\n\n"
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @v1.post("/completions")
    async def completions(request: Request) -> Response:
        req = api.parse_body(api.CompletionRequest, await request.body())
        adapter = adapter_for(req.model)
        gens = api.completion_to_requests(req, adapter, settings.default_max_tokens)
        rid = api.new_id("cmpl")
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            return await _stream_completions(request, gens, rid, req.model, include_usage)
        try:
            responses = await watch(request, asyncio.gather(*(engine.generate(g) for g in gens)))
        except ClientGone:
            return Response(status_code=499)
        except Exception as exc:
            raise _engine_error(exc) from None
        choices = []
        for p, (gen, response) in enumerate(zip(gens, responses)):
            for c in response.choices:
                choices.append(api.completion_choice(p * gen.n + c.index, c, response, gen))
        return JSONResponse(
            {
                "id": rid,
                "object": "text_completion",
                "created": api.now(),
                "model": req.model,
                "choices": choices,
                "usage": api.usage(
                    sum(r.prompt_tokens for r in responses), sum(r.completion_tokens for r in responses)
                ),
                "system_fingerprint": None,
            }
        )

    async def _stream_completions(
        request: Request, gens: list[GenerationRequest], rid: str, model: str, include_usage: bool
    ) -> Response:
        created = api.now()
        stream = merge_streams([engine.stream(g) for g in gens])
        first = await _first_chunk(request, stream)
        if first is None:
            return Response(status_code=499)

        def chunk_of(choices: list[dict[str, Any]]) -> dict[str, Any]:
            body: dict[str, Any] = {
                "id": rid,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": choices,
                "system_fingerprint": None,
            }
            if include_usage:
                body["usage"] = None
            return body

        async def events() -> AsyncIterator[str]:
            last_check = [time.monotonic()]
            prompt_tokens = [0] * len(gens)
            completion: dict[tuple[int, int], int] = {}
            echoed: set[tuple[int, int]] = set()
            try:
                item = first
                while item is not _END:
                    p, chunk = item
                    gen = gens[p]
                    index = p * gen.n + chunk.index
                    prompt_tokens[p] = chunk.prompt_tokens
                    completion[(p, chunk.index)] = chunk.completion_tokens
                    text = chunk.text
                    if gen.echo and (p, chunk.index) not in echoed:
                        echoed.add((p, chunk.index))
                        text = (gen.prompt if isinstance(gen.prompt, str) else "") + text
                    logprobs = (
                        api.legacy_logprobs(chunk.logprobs, 0) if gen.logprobs and chunk.logprobs else None
                    )
                    if text or logprobs or chunk.finish_reason:
                        yield _sse(
                            chunk_of(
                                [
                                    {
                                        "index": index,
                                        "text": text,
                                        "logprobs": logprobs,
                                        "finish_reason": chunk.finish_reason,
                                    }
                                ]
                            )
                        )
                    item = await _next_watched(request, stream, last_check)
                if include_usage:
                    final = chunk_of([])
                    final["usage"] = api.usage(sum(prompt_tokens), sum(completion.values()))
                    yield _sse(final)
                yield "data: [DONE]\n\n"
            except ClientGone:
                return
            except Exception as exc:
                yield _sse(_engine_error(exc).body())
                yield "data: [DONE]\n\n"
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    async def _first_chunk(request: Request, stream: AsyncIterator[Any]) -> Any:
        """The first chunk before any header goes out, so a refused request is a plain 4xx.

        The wait may be long (queued behind running batches): the client is watched meanwhile.
        """
        try:
            return await watch(request, _next(stream))
        except ClientGone:
            await stream.aclose()  # type: ignore[attr-defined]
            return None
        except Exception as exc:
            await stream.aclose()  # type: ignore[attr-defined]
            raise _engine_error(exc) from None

    async def _next_watched(request: Request, stream: AsyncIterator[Any], last_check: list[float]) -> Any:
        """The next chunk of a started stream; the client is checked at most every DISCONNECT_POLL_S.

        Starlette's StreamingResponse also listens for the disconnect and cancels the stream (and
        with it the engine's job) while it waits for a chunk.
        """
        item = await _next(stream)
        now = time.monotonic()
        if now - last_check[0] >= DISCONNECT_POLL_S:
            last_check[0] = now
            if await request.is_disconnected():
                raise ClientGone()
        return item

    app.include_router(v1)
    return app
