"""The OpenAI-compatible HTTP server over any inference engine (`swift deploy`).

`create_app(engine, config)` builds the FastAPI app (imported lazily: fastapi loads only here).
"""

from __future__ import annotations

from typing import Any


def create_app(engine: Any, config: Any = None, **kwargs: Any) -> Any:
    from swift_core.serve.app import create_app as _create_app

    return _create_app(engine, config, **kwargs)


__all__ = ["create_app"]
