"""The API key of the /v1 routes (`--api_key`, or `SWIFT_API_KEY`), in OpenAI's words and error codes."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets

from swift_core.errors import SwiftError
from swift_core.serve.openai_api import OpenAIError

logger = logging.getLogger(__name__)

API_KEY_ENV = "SWIFT_API_KEY"
MISSING_KEY = (
    "You didn't provide an API key. Pass it in the Authorization header (Authorization: Bearer YOUR_KEY)."
)


def resolve_api_key(flag: str | None) -> str | None:
    """The key the server requires: `--api_key`, else `$SWIFT_API_KEY` (which keeps it out of
    `ps`), else None (no key). An empty one is refused: `--api_key "$KEY"` with KEY unset would
    otherwise switch authentication off without a word."""
    if flag is not None:
        if not flag.strip():
            raise SwiftError(
                "--api_key is empty (an unset variable?): pass the key, set SWIFT_API_KEY, or leave "
                "both out to serve without a key"
            )
        return flag
    value = os.environ.get(API_KEY_ENV)
    if value is None:
        return None
    if not value.strip():
        raise SwiftError(f"{API_KEY_ENV} is set but empty: set the key, or unset it to serve without one")
    return value


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def warn_if_exposed(host: str, api_key: str | None) -> None:
    """Warn when the server listens beyond this machine with no key: anyone who reaches the
    port can use the model."""
    if api_key is None and not is_loopback(host):
        logger.warning(
            f"listening on {host} without an API key: anyone who can reach this port can use the "
            f"model; set --api_key or {API_KEY_ENV}"
        )


def check_api_key(expected: str | None, authorization: str) -> None:
    """Raise a 401 OpenAIError unless `authorization` is `Bearer <expected>`; no key: all pass.

    The comparison takes constant time so that the key cannot be guessed from response times.
    """
    if expected is None:
        return
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise OpenAIError(401, MISSING_KEY, code="invalid_api_key")
    if not secrets.compare_digest(token.strip().encode(), expected.encode()):
        raise OpenAIError(401, "Incorrect API key provided.", code="invalid_api_key")
