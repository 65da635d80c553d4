"""Every failure answered as OpenAI's error JSON, with the status a client can act on.

OpenAI's SDKs read `{"error": {...}}` and map the status to an exception class; FastAPI's own
error bodies (`{"detail": ...}`) would reach them as unparseable. So the app installs a handler
for each kind of failure, and the routes translate engine exceptions with `engine_error`: a
user's mistake is a 4xx, a busy or broken engine a 503, and only an unexpected bug a 500.

An unexpected bug is logged once, with its traceback, at error level (`engine_error`). Every
route is an `OpenAIRoute`, which answers such a bug itself: an exception that reached
Starlette's outermost handler would be answered and then re-raised to uvicorn, which logs it a
second time ("Exception in ASGI application").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from swift_core.engines.protocol import PromptTooLong, UnsupportedRequest
from swift_core.errors import SwiftError
from swift_core.serve.openai_api import OpenAIError

logger = logging.getLogger(__name__)


def engine_error(exc: BaseException) -> OpenAIError:
    """The OpenAI error for an exception raised while the engine worked on a request.

    The engine's own refusals keep their message (the user can fix the request); anything else
    is logged with its traceback here and answered without internals.
    """
    if isinstance(exc, PromptTooLong):
        return OpenAIError(400, str(exc), code="context_length_exceeded")
    if isinstance(exc, UnsupportedRequest):
        return OpenAIError(400, str(exc))
    if isinstance(exc, SwiftError):
        return OpenAIError(503, str(exc), type="server_error", code="unavailable")
    logger.error(f"request failed: {type(exc).__name__}: {exc}", exc_info=exc)
    return OpenAIError(500, f"the server failed on this request: {type(exc).__name__}", type="server_error")


def error_response(exc: OpenAIError) -> JSONResponse:
    """The JSON response of `exc`; a 401 names the scheme it expects, as HTTP asks."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def note_error(request: Request, exc: OpenAIError) -> None:
    """The error's code, for the access-log line and the error counter (`access.py`)."""
    request.state.error_code = exc.code or exc.type


async def openai_error_handler(request: Request, exc: OpenAIError) -> JSONResponse:
    """Errors the routes raise on purpose (bad key, unknown model, invalid body)."""
    note_error(request, exc)
    return error_response(exc)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's routing errors (404 unknown URL, 405 wrong method) in OpenAI's shape."""
    message = (
        f"Unknown request URL: {request.method} {request.url.path}."
        if exc.status_code == 404
        else str(exc.detail)
    )
    code = "unknown_url" if exc.status_code == 404 else None
    error = OpenAIError(exc.status_code, message, code=code)
    note_error(request, error)
    return error_response(error)


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's validation errors: a 400 (OpenAI's status for a bad request), not a 422."""
    error = OpenAIError(400, f"Invalid request: {exc.errors()[:1]}")
    note_error(request, error)
    return error_response(error)


async def server_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Whatever escaped the routes: still OpenAI's JSON, never Starlette's plain-text 500."""
    error = engine_error(exc)
    note_error(request, error)
    return error_response(error)


class OpenAIRoute(APIRoute):
    """A route whose unexpected exceptions become OpenAI's 500 JSON here, logged once (see above);
    the errors raised on purpose (OpenAIError, HTTP and validation errors) go to their handlers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (OpenAIError, StarletteHTTPException, RequestValidationError):
                raise
            except Exception as exc:
                error = engine_error(exc)
                note_error(request, error)
                return error_response(error)

        return route


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on `app`, most specific first."""
    app.add_exception_handler(OpenAIError, openai_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, server_error_handler)
