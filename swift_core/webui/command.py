"""`swift web-ui`: the command that starts the web UI's server.

It lives beside the web UI rather than in `swift_core.cli` because the web UI sits above the CLI
(its forms are the CLI's commands); the CLI's table names it by module path only.
"""

from __future__ import annotations

import logging
import os

import click

from swift_core.errors import SwiftError

log = logging.getLogger("swift_core")


@click.command("web-ui", help="Train, watch, chat, export and deploy from a browser (a local job service).")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind; beyond loopback needs a key."
)
@click.option("--port", default=7860, show_default=True, type=int, help="Port (0: any free port).")
@click.option(
    "--api_key",
    "--api-key",
    default=None,
    help="Token every route requires (also from SWIFT_WEBUI_KEY). Beyond loopback without one, a token is made.",
)
@click.option(
    "--work_dir",
    "--work-dir",
    default="swift_webui",
    show_default=True,
    help="Where jobs are kept (arguments, status, logs, outputs); a restarted UI re-attaches to them.",
)
@click.option(
    "--chat_engine", default="transformers", show_default=True, help="Engine plugin of the chat pane."
)
def web_ui(host: str, port: int, api_key: str | None, work_dir: str, chat_engine: str) -> None:
    from swift_core.webui.auth import is_loopback, new_token

    if api_key is None:
        api_key = os.environ.get("SWIFT_WEBUI_KEY") or None
    if api_key is not None and not api_key.strip():
        raise SwiftError(
            "--api_key is empty (an unset variable?): give a key, or leave the flag out on loopback"
        )
    if api_key is None and not is_loopback(host):
        api_key = new_token()
        log.warning(f"--host {host} is beyond loopback: every route needs a token; one was made for this run")
    _serve(host, port, api_key, work_dir, chat_engine)


def _serve(host: str, port: int, token: str | None, work_dir: str, chat_engine: str) -> None:
    import socket

    import uvicorn

    from swift_core.webui.app import create_app

    app = create_app(work_dir, token=token, chat_engine=chat_engine)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise SwiftError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    # Listening before the address is printed: a client that reads it and connects at once is
    # queued until uvicorn accepts, rather than refused while the app still starts up.
    sock.listen(2048)
    bound = sock.getsockname()[1]
    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    click.echo(f"swift web-ui: open {url}  (jobs in {os.path.abspath(work_dir)})", err=True)
    config = uvicorn.Config(app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
