"""The OpenAPI schema `GET /openapi.json` publishes: routes, request bodies, errors, the key.

The routes parse their bodies themselves (`openai_api.parse_body`, for OpenAI's error messages),
so FastAPI cannot see what they take; this module adds each POST route's body from the same
pydantic models that parse it, so clients, code generators and fuzzers (the tests run
schemathesis against it) see what the server really accepts. Built once per app.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from swift_core.engines.protocol import MAX_COUNT, REPETITION_PENALTY_RANGE, SEED_RANGE
from swift_core.serve import openai_api as api
from swift_core.serve.limits import RequestLimits
from swift_core.serve.scoring import ScoreRequest

REF = "#/components/schemas/{model}"

# Each POST route's body model.
BODIES: dict[str, type] = {
    "/v1/chat/completions": api.ChatCompletionRequest,
    "/v1/completions": api.CompletionRequest,
    "/v1/score": ScoreRequest,
}

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type"],
        }
    },
    "required": ["error"],
}

_ERRORS = {
    "400": "Invalid request (OpenAI's error JSON names the parameter)",
    "401": "Missing or wrong API key",
    "404": "Unknown model",
    "413": "Request body larger than --max_request_bytes",
}


ROLES = ["system", "developer", "user", "assistant", "tool"]


def _bound(prop: dict[str, Any], **constraints: Any) -> None:
    """Put `constraints` on the non-null branches of a pydantic property schema."""
    branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    for branch in branches:
        if branch.get("type") == "array" and "items" in branch:
            branch.update({k: v for k, v in constraints.items() if k == "maxItems"})
            branch["items"].update({k: v for k, v in constraints.items() if k == "maxLength"})
        elif branch.get("type") == "string":
            branch.update({k: v for k, v in constraints.items() if k == "maxLength"})
        else:
            branch.update({k: v for k, v in constraints.items() if k not in ("maxItems", "maxLength")})


def _limits(components: dict[str, Any], model: str, limits: Any) -> None:
    """The value limits the routes apply (`openai_api._sampling`, `limits.RequestLimits`), stated
    in the schema so that clients and fuzzers can read them; the routes still check them."""
    props = components[model]["properties"]
    low, high = REPETITION_PENALTY_RANGE
    _bound(props["temperature"], minimum=0, maximum=limits.max_temperature)
    _bound(props["top_p"], exclusiveMinimum=0, maximum=1)
    _bound(props["top_k"], minimum=-1, maximum=MAX_COUNT)
    _bound(props["repetition_penalty"], minimum=low, maximum=high)
    _bound(props["seed"], minimum=SEED_RANGE[0], maximum=SEED_RANGE[1])
    _bound(props["n"], minimum=1, maximum=limits.max_n)
    _bound(props["stop"], maxItems=limits.max_stop, maxLength=limits.max_stop_chars)
    _bound(props["max_tokens"], minimum=0, maximum=MAX_COUNT)
    for name in ("presence_penalty", "frequency_penalty"):
        _bound(props[name], minimum=0, maximum=0)  # unsupported: only 0 (off) is accepted
    for name in ("top_logprobs", "logprobs", "max_completion_tokens"):
        if name in props and any(b.get("type") == "integer" for b in props[name].get("anyOf", [])):
            _bound(props[name], minimum=0, maximum=20 if "logprobs" in name else MAX_COUNT)


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The app's schema with request bodies, error responses and (with a key) bearer security."""
    cached = getattr(app.state, "openapi_schema", None)
    if cached is not None:
        return cached
    from swift_core import __version__

    schema = get_openapi(title=app.title, version=__version__, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = _ERROR
    settings = getattr(app.state, "settings", None)
    engine = getattr(app.state, "engine", None)
    served = [*getattr(settings, "model_names", []), *(engine.adapter_names() if engine else [])]
    for path, model in BODIES.items():
        body = model.model_json_schema(ref_template=REF)  # type: ignore[attr-defined]
        components.update(body.pop("$defs", {}))
        if served:  # the names this server answers to (anything else is a 404)
            body["properties"]["model"]["enum"] = served
        components[model.__name__] = body
        if model is not ScoreRequest:  # the sampling routes' value limits
            _limits(components, model.__name__, getattr(settings, "limits", None) or RequestLimits())
        operation = schema["paths"][path]["post"]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        }
        responses = operation.setdefault("responses", {})
        for status, description in _ERRORS.items():
            responses[status] = {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
            }
    if "ChatMessage" in components:
        components["ChatMessage"]["properties"]["role"]["enum"] = ROLES
    if getattr(settings, "api_key", None):
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, methods in schema["paths"].items():
            if path.startswith("/v1/"):
                for operation in methods.values():
                    operation["security"] = [{"bearer": []}]
    app.state.openapi_schema = schema
    return schema
