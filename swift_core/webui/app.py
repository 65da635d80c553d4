"""The web UI's HTTP app: the page, the job service's API, live events and the chat pane.

Every route, the page included, is behind the token when one is set (`auth.py`). Errors a user
can cause (a bad form, an unknown job) are 4xx JSON `{"error": ...}` with the CLI's own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from swift_core.errors import SwiftError
from swift_core.webui import forms
from swift_core.webui.auth import COOKIE, bearer, token_matches
from swift_core.webui.chat import ChatService
from swift_core.webui.jobs import ACTIVE, JobStore

STATIC = ("index.html", "app.js", "style.css")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
POLL_S = 0.5


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _static(name: str) -> Response:
    data = resources.files("swift_core.webui").joinpath("static", name).read_bytes()
    return Response(data, media_type=_TYPES[Path(name).suffix], headers={"Cache-Control": "no-store"})


def _sse(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


def selector_choices(manager: Any) -> dict[str, list[str]]:
    """{flag: capability names} for the flags that pick a capability (tuner_type, engine, ...)."""
    from swift_core.descriptors import KINDS

    out: dict[str, list[str]] = {}
    for kind in KINDS.values():
        if kind.selector:
            names = manager.registry(kind.name).names()
            out[kind.selector] = (["auto"] if kind.selector == "device" else []) + sorted(names)
    out["dataset"] = sorted(manager.registry("datasets").names())
    return out


def create_app(
    work_dir: str | Path, *, token: str | None = None, chat_engine: str = "transformers"
) -> FastAPI:
    from swift_core.plugins import get_plugin_manager

    manager = get_plugin_manager()
    store = JobStore(work_dir)
    chat = ChatService(chat_engine, manager)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await chat.close()  # the chat pane's model; jobs are not the server's to stop

    app = FastAPI(title="Swift web UI", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store = store

    @app.middleware("http")
    async def check_token(request: Request, call_next: Any) -> Response:
        if token is None:
            return await call_next(request)
        query = request.query_params.get("token")
        if request.url.path == "/" and query is not None and token_matches(token, query):
            redirect = RedirectResponse("/", status_code=303)
            redirect.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return redirect
        given = (bearer(request.headers.get("authorization")), request.cookies.get(COOKIE))
        if not token_matches(token, *given):
            return _error(401, "this web UI needs its token: open the address printed at start (…/?token=…)")
        return await call_next(request)

    @app.get("/")
    async def index() -> Response:
        return _static("index.html")

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            return _error(404, f"no static file {name!r}")
        return _static(name)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/api/commands")
    async def commands() -> dict[str, Any]:
        names = await asyncio.to_thread(forms.available_commands)
        choices = await asyncio.to_thread(selector_choices, manager)
        return {"commands": names, "choices": choices}

    @app.get("/api/commands/{command}")
    async def command_form(command: str) -> Response:
        try:
            return JSONResponse(await asyncio.to_thread(forms.form_schema, command, manager))
        except SwiftError as exc:
            return _error(404, str(exc))

    async def _body(request: Request) -> tuple[str, dict[str, Any]]:
        try:
            body = await request.json()
        except ValueError:
            raise SwiftError("the body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            raise SwiftError("give {command, values}")
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise SwiftError("values: expected an object of field -> value")
        return body["command"], values

    @app.post("/api/preview")
    async def preview(request: Request) -> Response:
        try:
            command, values = await _body(request)
            argv = await asyncio.to_thread(forms.to_argv, command, values, manager)
        except SwiftError as exc:
            return _error(400, str(exc))
        preview_ = await asyncio.to_thread(forms.preview, command, argv, manager)
        return JSONResponse({"argv": argv, **preview_})

    @app.post("/api/jobs")
    async def create_job(request: Request) -> Response:
        try:
            command, values = await _body(request)
            argv = await asyncio.to_thread(forms.to_argv, command, values, manager)
            fields = {
                f["name"] for f in (await asyncio.to_thread(forms.form_schema, command, manager))["fields"]
            }
            # Parse exactly as the CLI will: a bad form is refused now, with the CLI's message.
            await asyncio.to_thread(forms.check_argv, command, argv, manager)
        except SwiftError as exc:
            return _error(400, str(exc))
        job = store.create(
            command,
            argv,
            resumable="resume_from_checkpoint" in fields,
            own_output_dir="output_dir" in fields and "output_dir" not in values,
        )
        return JSONResponse(job.as_dict(), status_code=201)

    @app.get("/api/jobs")
    async def list_jobs() -> dict[str, Any]:
        return {"jobs": [j.as_dict() for j in store.list()]}

    def _job(job_id: str) -> Any:
        try:
            return store.get(job_id)
        except KeyError:
            raise SwiftError(f"no job {job_id!r}") from None

    @app.get("/api/jobs/{job_id}")
    async def job_detail(job_id: str) -> Response:
        try:
            job = _job(job_id)
        except SwiftError as exc:
            return _error(404, str(exc))
        return JSONResponse({**job.as_dict(), "metrics": job.metrics(), "checkpoints": job.checkpoints()})

    @app.get("/api/jobs/{job_id}/log")
    async def job_log(job_id: str, offset: int = 0) -> Response:
        try:
            text, end = _job(job_id).log_tail(max(0, offset))
        except SwiftError as exc:
            return _error(404, str(exc))
        return JSONResponse({"text": text, "offset": end})

    @app.post("/api/jobs/{job_id}/{action}")
    async def job_action(job_id: str, action: str) -> Response:
        if action not in ("stop", "resume"):
            return _error(404, f"no action {action!r}; use stop or resume")
        try:
            _job(job_id)
            job = store.stop(job_id) if action == "stop" else store.resume(job_id)
        except SwiftError as exc:
            return _error(409 if "no job" not in str(exc) else 404, str(exc))
        return JSONResponse(job.as_dict())

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(
        job_id: str, request: Request, log_offset: int = 0, metric_offset: int = 0
    ) -> Response:
        """Server-sent events: `log` (new text), `metric` (new logging.jsonl rows), `status`.

        The stream only reads the job's files: a client that goes away costs the job nothing. It
        ends after the job has ended and everything was sent; the page reconnects with the offsets
        it has, so nothing is lost or repeated across reconnects and server restarts.
        """
        try:
            _job(job_id)
        except SwiftError as exc:
            return _error(404, str(exc))

        async def events() -> AsyncIterator[str]:
            log_at, metric_at, status = max(0, log_offset), max(0, metric_offset), None
            while not await request.is_disconnected():
                job = store.get(job_id)
                text, log_at = job.log_tail(log_at)
                if text:
                    yield _sse("log", {"text": text, "offset": log_at})
                rows = job.metrics()
                if len(rows) > metric_at:
                    yield _sse("metric", {"rows": rows[metric_at:], "offset": len(rows)})
                    metric_at = len(rows)
                if job.status != status:
                    status = job.status
                    yield _sse("status", {**job.as_dict(), "checkpoints": job.checkpoints()})
                if status not in ACTIVE and not text:
                    yield _sse("end", {"status": status})
                    return
                await asyncio.sleep(POLL_S)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @app.get("/api/checkpoints")
    async def all_checkpoints() -> dict[str, Any]:
        return {"checkpoints": [{"job": j.id, "path": c} for j in store.list() for c in j.checkpoints()]}

    @app.post("/api/chat")
    async def chat_route(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("target"), str) or not body["target"]:
            return _error(400, "give {target: checkpoint folder or model, messages: [...]}")
        messages = body.get("messages")
        if not isinstance(messages, list):
            return _error(400, "messages: expected a list of {role, content}")
        try:
            max_tokens = int(body.get("max_tokens", 64))
            temperature = float(body.get("temperature", 0.0))
        except (TypeError, ValueError):
            return _error(400, "max_tokens and temperature must be numbers")
        stream = chat.stream(body["target"], messages, max_tokens, temperature)
        try:
            first = await anext(stream, None)  # build the engine and check the request before 200
        except SwiftError as exc:
            return _error(400, str(exc))

        async def events() -> AsyncIterator[str]:
            try:
                if first is not None:
                    yield _sse("delta", {"text": first})
                async for text in stream:
                    yield _sse("delta", {"text": text})
                yield _sse("done", {})
            except SwiftError as exc:
                yield _sse("error", {"error": str(exc)})

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
