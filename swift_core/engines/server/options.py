"""Options of the `server` engine (flags of `swift rlhf`, and of infer/deploy like every engine's).

Light on purpose: the built-in engines plugin imports this at start-up. The server's API key is
no flag: it is read from $SWIFT_API_KEY (as `swift deploy` reads its own), so it stays out of `ps`
and out of the run's args.json, which records every flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config.arguments import arg


@dataclass(kw_only=True)
class ServerEngineOptions:
    rollout_server_url: str | None = arg(
        None,
        help="server engine: base URL of a swift deploy --enable_weight_updates server (http://HOST:PORT)",
    )
    rollout_server_weights_dir: str | None = arg(
        None,
        help="server engine: folder on a disk the server also reads, for the weights file sent after each "
        "step (default: a private folder in /dev/shm or the temp dir: same machine only)",
    )
    rollout_server_timeout: float = arg(600.0, help="server engine: seconds to wait for one HTTP answer")
