"""`swift deploy`: an OpenAI-compatible API (chat, completions, models) over an engine plugin."""

from __future__ import annotations

from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.infer.arguments import DeployArguments


def _deploy(args: DeployArguments) -> Any:
    from swift_core.serve.deploy import run_deploy

    run_deploy(args)


deploy = dataclass_command(
    "deploy",
    DeployArguments,
    _deploy,
    "Serve a model, its adapters or a checkpoint behind an OpenAI-compatible API.",
)
