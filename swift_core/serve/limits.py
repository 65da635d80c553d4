"""What one request may ask of the server: its size, and OpenAI's limits on its values.

A server that reads any body and takes any value lets one client freeze it (a 20 MB body was
parsed and tokenized on the event loop for 14 s) or slow every request batched with it (100,000
stop strings). The body is capped before it is read (413), and the values follow OpenAI's
documented limits (at most 4 stop strings, temperature 0-2, n at most 128, seed a 64-bit
integer) unless a `swift deploy` flag widens them. The engine protocol's own checks
(`InferenceEngine.check_request`) still apply after these: they hold for every caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swift_core.errors import SwiftError

DEFAULT_MAX_REQUEST_BYTES = 4 << 20  # 4 MiB: a 128k-token prompt is about 0.5 MB of text


@dataclass(frozen=True)
class RequestLimits:
    """The limits the routes apply; the defaults are OpenAI's."""

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_stop: int = 4  # stop strings per request
    max_stop_chars: int = 1000  # characters per stop string (each is matched on every token)
    max_temperature: float = 2.0
    max_n: int = 128

    @classmethod
    def from_config(cls, config: Any) -> RequestLimits:
        """The deploy arguments' `--max_request_bytes`, `--max_stop`, `--max_temperature` (a missing
        or None value keeps the default)."""
        values = {
            name: getattr(config, name, None) for name in ("max_request_bytes", "max_stop", "max_temperature")
        }
        limits = cls(**{k: v for k, v in values.items() if v is not None})
        if limits.max_request_bytes < 1 or limits.max_stop < 0 or not limits.max_temperature >= 0:
            raise SwiftError(
                "--max_request_bytes must be >= 1, --max_stop >= 0 and --max_temperature >= 0 "
                f"(got {limits.max_request_bytes}, {limits.max_stop}, {limits.max_temperature})"
            )
        return limits
