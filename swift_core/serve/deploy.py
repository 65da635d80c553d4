"""`swift deploy`: load the engine, build the app, let plugins see it, serve until SIGTERM."""

from __future__ import annotations

import time
from typing import Any

import click

from swift_core.errors import SwiftError
from swift_core.infer.arguments import build_engine


def run_deploy(args: Any, manager: Any = None) -> None:
    """`args`: DeployArguments, or InferArguments with --port (engine + serve arguments both)."""
    from swift_core.plugins import get_plugin_manager
    from swift_core.serve.app import create_app
    from swift_core.serve.server import bind_socket, serve

    manager = manager or get_plugin_manager()
    port = 8000 if args.port is None else args.port
    bind_socket(args.host, port).close()  # a busy port fails now, not after the model loads
    start = time.perf_counter()
    engine = build_engine(args, manager)
    names = [args.served_model_name or engine.model_name, *engine.adapter_names()]
    if names[0] in names[1:]:
        raise SwiftError(
            f"an adapter is named {names[0]!r} like the model itself; rename it (--adapters NAME=DIR)"
        )
    click.echo(
        f"loaded {engine.model_name} in {time.perf_counter() - start:.1f}s; serving models: {', '.join(names)}",
        err=True,
    )
    app = create_app(engine, args, owns_engine=True)
    manager.hook.serve_app(app=app, args=args)
    serve(app, args.host, port, graceful_timeout=args.graceful_timeout, log_level=args.log_level)
    click.echo("server stopped", err=True)
