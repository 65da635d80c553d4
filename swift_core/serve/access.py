"""One access-log line per request, its request id, and its counts in the metrics.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware, which buffers streamed bodies and
hides client disconnects): it takes the client's `x-request-id` (or makes one), echoes it in the
response headers, and when the response ends logs `METHOD path status duration rid=... code=...`
on the `swift.serve.access` logger, so that a 404 for a wrong model name is visible server-side
with the OpenAI error code the client got.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from swift_core.serve.metrics import ServerMetrics

access_logger = logging.getLogger("swift.serve.access")

# A client's request id is echoed and logged only if it is a short printable token.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class AccessLog:
    """ASGI middleware: request id, access line, request and error counters."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, status, time.perf_counter() - started, rid)

    def _record(self, scope: dict[str, Any], status: int, took: float, rid: str) -> None:
        path = scope.get("path", "")
        route = path if path in _ROUTES else "other"  # bounded label values
        code = scope.get("state", {}).get("error_code")
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.duration.labels(route).observe(took)
        if status >= 400:
            self.metrics.errors.labels(str(status), code or "").inc()
        client = scope.get("client") or ("-", 0)
        access_logger.info(
            '%s "%s %s" %d %.1fms rid=%s%s',
            client[0],
            scope.get("method", "-"),
            path,
            status,
            took * 1000,
            rid,
            f" code={code}" if code else "",
        )


_ROUTES = {
    "/health",
    "/metrics",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/score",
    "/openapi.json",
}
