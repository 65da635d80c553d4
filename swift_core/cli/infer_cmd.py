"""`swift infer`: interactive chat, batch inference over a dataset, or `--port` to serve.

`--port` is dispatched here, to `swift deploy`'s server: the `swift infer` pipeline
(`swift_core.infer`) sits below the server in the layers and does not import it.
"""

from __future__ import annotations

from typing import Any

from swift_core.cli.dataclass_command import dataclass_command
from swift_core.infer.arguments import InferArguments


def _infer(args: InferArguments) -> Any:
    if args.port is not None:
        from swift_core.serve.deploy import run_deploy

        return run_deploy(args)
    from swift_core.infer.run import run_infer

    run_infer(args)


infer = dataclass_command(
    "infer",
    InferArguments,
    _infer,
    "Chat with a model or a checkpoint in the terminal, or answer a dataset (--val_dataset).",
)
