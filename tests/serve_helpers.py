"""A real uvicorn server around an app for the serving tests (one copy for every test module)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """`app` on uvicorn on a free 127.0.0.1 port, in a thread; yields its base URL."""
    from swift_core.serve.server import bind_socket, make_server

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    srv = make_server(app, log_level="warning")
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        sock.close()
