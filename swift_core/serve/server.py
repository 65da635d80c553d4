"""Running the app: uvicorn on a socket Swift binds itself, graceful shutdown, exit 0 on SIGTERM.

SIGTERM or SIGINT: uvicorn stops accepting connections, lets in-flight requests finish (at most
`graceful_timeout` seconds, then cancels them), the app's shutdown closes the engine, and the
process exits 0. uvicorn's own handler re-raises the signal after shutting down, which would end
the process with the signal's status; `_Server` keeps the graceful part and drops the re-raise.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import click

from swift_core.errors import SwiftError


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SwiftError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(
    app: Any, *, graceful_timeout: float = 30.0, log_level: str = "info", on_ready: Any = None
) -> Any:
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit and on_ready is not None:
                on_ready()

    config = uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=graceful_timeout,
        lifespan="on",
        access_log=log_level == "debug",
    )
    return _Server(config)


def access_logging(log_level: str) -> None:
    """The access lines (`swift.serve.access`, one per request) on stderr, at info and below; not
    uvicorn's own access log (shown at debug only), which knows neither request ids nor error codes."""
    import logging

    logger = logging.getLogger("swift.serve.access")
    logger.setLevel(log_level.upper() if log_level.upper() in logging.getLevelNamesMapping() else "INFO")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s access %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def serve(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    graceful_timeout: float = 30.0,
    log_level: str = "info",
) -> None:
    """Serve until SIGTERM/SIGINT; prints `ready on http://HOST:PORT` once requests are accepted."""
    sock = bind_socket(host, port)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host

    def ready() -> None:
        click.echo(f"ready on http://{shown}:{actual}")
        sys.stdout.flush()

    access_logging(log_level)
    server = make_server(app, graceful_timeout=graceful_timeout, log_level=log_level, on_ready=ready)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
