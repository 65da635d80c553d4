"""The API key check of the /v1 routes (`--api_key`), in OpenAI's words and error codes."""

from __future__ import annotations

import secrets

from swift_core.serve.openai_api import OpenAIError

MISSING_KEY = (
    "You didn't provide an API key. Pass it in the Authorization header (Authorization: Bearer YOUR_KEY)."
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
