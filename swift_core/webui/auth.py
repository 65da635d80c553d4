"""The web UI's access check: one token on every route, given as a header, a query or a cookie.

A browser cannot add an Authorization header to a page load or an EventSource, so the page is
opened once as `/?token=...`; the server answers with an HttpOnly, SameSite=Strict cookie and the
page's own requests carry it. API clients use `Authorization: Bearer ...`. Comparison takes
constant time.
"""

from __future__ import annotations

import ipaddress
import secrets

COOKIE = "swift_webui_token"


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_matches(expected: str | None, *candidates: str | None) -> bool:
    if expected is None:
        return True
    return any(c is not None and secrets.compare_digest(c.encode(), expected.encode()) for c in candidates)


def bearer(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def new_token() -> str:
    return secrets.token_urlsafe(24)
