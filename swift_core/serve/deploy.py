"""`swift deploy`: load the engine, build the app, let plugins see it, serve until SIGTERM."""

from __future__ import annotations

import time
from typing import Any

import click

from swift_core.errors import SwiftError
from swift_core.infer.arguments import build_engine, engine_config
from swift_core.infer.score import scores_only


def run_deploy(args: Any, manager: Any = None) -> None:
    """`args`: DeployArguments, or InferArguments with --port (engine + serve arguments both)."""
    from swift_core.plugins import get_plugin_manager
    from swift_core.serve.app import create_app
    from swift_core.serve.auth import resolve_api_key, warn_if_exposed
    from swift_core.serve.limits import RequestLimits
    from swift_core.serve.server import bind_socket, serve
    from swift_core.serve.settings import ServeSettings

    manager = manager or get_plugin_manager()
    port = 8000 if args.port is None else args.port
    # Checked before the model loads: an empty key, an exposed server, bad limits, a busy port.
    args.api_key = resolve_api_key(args.api_key)
    warn_if_exposed(args.host, args.api_key)
    if getattr(args, "enable_weight_updates", False) and not args.api_key:
        click.echo(
            "warning: --enable_weight_updates without --api_key: any client that reaches this server can "
            "replace the served weights (and make it read a file path it names)",
            err=True,
        )
    RequestLimits.from_config(args)
    bind_socket(args.host, port).close()
    start = time.perf_counter()
    config = engine_config(args, manager)
    if scores_only(config):  # a reward model: POST /v1/score, no generation
        from swift_core.serve.reward import RewardEngine

        engine: Any = RewardEngine(config, manager)
    else:
        engine = build_engine(args, manager)
    settings = ServeSettings.from_config(engine, args)
    models = settings.model_names
    clash = sorted(set(models) & set(engine.adapter_names()))
    if clash:
        raise SwiftError(
            f"an adapter is named {clash[0]!r} like the model itself; rename it (--adapters NAME=DIR)"
        )
    names = [*models, *engine.adapter_names()]
    click.echo(
        f"loaded {engine.model_name} in {time.perf_counter() - start:.1f}s; serving models: {', '.join(names)}",
        err=True,
    )
    app = create_app(engine, args, owns_engine=True)
    manager.hook.serve_app(app=app, args=args)
    serve(app, args.host, port, graceful_timeout=args.graceful_timeout, log_level=args.log_level)
    click.echo("server stopped", err=True)
