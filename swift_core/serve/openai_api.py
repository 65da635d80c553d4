"""OpenAI's request and response shapes, and their mapping to the engine protocol.

Requests are validated strictly (a string where a number belongs is a 400, as on api.openai.com);
unknown fields are ignored, as vLLM does; known options this server cannot honour are refused
with a 400 naming the parameter, never silently ignored. Values follow OpenAI's limits
(`serve.limits.RequestLimits`, widened by flags) and the engine protocol's, so that nothing a
client sends reaches an engine it could break: every such value is a 400 here.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swift_core.engines.constraints import CHOICE, GRAMMAR, JSON_OBJECT, JSON_SCHEMA, REGEX, OutputConstraint
from swift_core.engines.protocol import (
    MAX_COUNT,
    REPETITION_PENALTY_RANGE,
    SEED_RANGE,
    Choice,
    GenerationRequest,
    GenerationResponse,
    TokenLogprob,
    UnsupportedRequest,
    is_greedy,
)
from swift_core.engines.tool_choice import tool_call_constraint
from swift_core.serve.limits import RequestLimits
from swift_core.templates.tool_calls import HERMES, ToolCallFormat


class OpenAIError(Exception):
    """An error answered as OpenAI's error JSON with the given HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# --- requests -----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class StreamOptions(_Strict):
    include_usage: bool | None = False


class FunctionCall(_Strict):
    name: str
    arguments: str | dict[str, Any] | None = None


class ToolCall(_Strict):
    id: str | None = None
    type: str | None = "function"
    function: FunctionCall


class FunctionDefinition(_Strict):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Strict):
    type: str | None = "function"
    function: FunctionDefinition


class ChatMessage(_Strict):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class _Sampling(_Strict):
    model: str
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = 1
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    # vLLM's structured-output extensions (one at most, and not with a response_format)
    guided_json: dict[str, Any] | str | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = None
    guided_grammar: str | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = 16
    logprobs: int | None = None
    echo: bool | None = False
    best_of: int | None = None
    suffix: str | None = None


def parse_body(cls: type[BaseModel], body: bytes) -> Any:
    """The request model from raw JSON; malformed JSON and wrong types are 400s naming the field."""
    try:
        return cls.model_validate_json(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        kind = error.get("type", "")
        if kind == "json_invalid":
            raise OpenAIError(
                400,
                f"We could not parse the JSON body of your request: {error.get('msg', '')}. "
                "The body must be a JSON object.",
                code="invalid_json",
            ) from None
        loc = [str(p) for p in error.get("loc", ())]
        if kind == "model_type" or not loc:
            raise OpenAIError(400, "The request body must be a JSON object.", code="invalid_json") from None
        param = _param_name(loc, cls)
        if kind == "missing":
            raise OpenAIError(
                400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
            ) from None
        got = _json_type(error.get("input"))
        if kind.endswith("_type") or kind in ("is_instance_of", "union_tag_invalid"):
            raise OpenAIError(
                400,
                f"Invalid type for '{param}': {error.get('msg', 'wrong type')}, but got {got} instead.",
                param=param,
                code="invalid_type",
            ) from None
        raise OpenAIError(
            400, f"Invalid value for '{param}': {error.get('msg', '')}.", param=param, code="invalid_value"
        ) from None


def _param_name(loc: list[str], cls: type[BaseModel]) -> str:
    # Drop pydantic's union-member labels ("str", "list[int]", ...) from the location.
    fields = set(cls.model_fields) | set(ChatMessage.model_fields) | set(StreamOptions.model_fields)
    for nested in (ToolCall, FunctionCall, Tool, FunctionDefinition):
        fields |= set(nested.model_fields)
    parts: list[str] = []
    for p in loc:
        if p.isdigit():
            parts.append(f"[{p}]")
        elif p in fields or not parts:
            parts.append(("." if parts else "") + p)
    return "".join(parts)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _invalid(param: str, message: str) -> OpenAIError:
    return OpenAIError(400, f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def _unsupported(param: str, message: str) -> OpenAIError:
    return OpenAIError(400, message, param=param, code="unsupported_parameter")


def _sampling(
    req: _Sampling,
    max_tokens: int | None,
    default_max_tokens: int | None,
    limits: RequestLimits | None = None,
) -> dict[str, Any]:
    """Checks shared by both endpoints (OpenAI's limits, `limits` widening them); the
    GenerationRequest fields they give. A temperature below SAMPLING_EPS is greedy (0)."""
    limits = limits or RequestLimits()
    if max_tokens is not None and not 0 <= max_tokens <= MAX_COUNT:
        raise _invalid(
            "max_tokens",
            f"integer out of range. Expected a value between 0 and {MAX_COUNT}, but got {max_tokens}.",
        )
    if req.temperature is not None and not 0 <= req.temperature <= limits.max_temperature:  # NaN, inf too
        raise _invalid(
            "temperature", f"must be between 0 and {limits.max_temperature:g}, got {req.temperature}."
        )
    if req.top_p is not None and not 0 < req.top_p <= 1:
        raise _invalid("top_p", f"must be in (0, 1], got {req.top_p}.")
    if req.top_k is not None and not -1 <= req.top_k <= MAX_COUNT:
        raise _invalid(
            "top_k", f"must be -1 or 0 (off) or a positive integer up to {MAX_COUNT}, got {req.top_k}."
        )
    low, high = REPETITION_PENALTY_RANGE
    if req.repetition_penalty is not None and not low <= req.repetition_penalty <= high:
        raise _invalid(
            "repetition_penalty", f"must be between {low} and {high:g}, got {req.repetition_penalty}."
        )
    if req.seed is not None and not SEED_RANGE[0] <= req.seed <= SEED_RANGE[1]:
        raise _invalid("seed", f"must be a 64-bit integer (between {SEED_RANGE[0]} and {SEED_RANGE[1]}).")
    n = 1 if req.n is None else req.n
    if not 1 <= n <= limits.max_n:
        raise _invalid("n", f"must be between 1 and {limits.max_n}, got {n}.")
    for name in ("presence_penalty", "frequency_penalty"):
        value = getattr(req, name)
        if value:
            raise _unsupported(
                name, f"{name} is not supported by this server; use repetition_penalty instead."
            )
    if req.logit_bias:
        raise _unsupported("logit_bias", "logit_bias is not supported by this server.")
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > limits.max_stop:
        raise _invalid("stop", f"at most {limits.max_stop} stop sequences are allowed, got {len(stop)}.")
    if any(len(s) > limits.max_stop_chars for s in stop):
        raise _invalid("stop", f"a stop sequence may have at most {limits.max_stop_chars} characters.")
    if max_tokens is None:
        max_tokens = default_max_tokens if default_max_tokens is not None else 1 << 30  # up to the context
    temperature = 1.0 if req.temperature is None else req.temperature
    return {
        "max_tokens": max_tokens,
        "temperature": 0.0 if is_greedy(temperature) else temperature,
        "top_p": 1.0 if req.top_p is None else req.top_p,
        "top_k": -1 if req.top_k in (None, 0) else req.top_k,
        "repetition_penalty": 1.0 if req.repetition_penalty is None else req.repetition_penalty,
        "stop": [s for s in stop if s],
        "seed": req.seed,
        "n": n,
    }


def _message_text(message: ChatMessage, i: int, images: list[Any] | None = None) -> str:
    """The message's text; each `image_url` part becomes an `<image>` tag where it stood and its
    URL goes to `images` (the engine refuses images for a model that takes none)."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    text, last = "", None
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            text += ("\n" if last == "text" else "") + part["text"]
        elif kind == "image_url" and images is not None:
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if not isinstance(url, str) or not url:
                raise _invalid(
                    f"messages[{i}].content[{j}].image_url", "expected an object with a url string."
                )
            images.append(url)
            text += "<image>"
        else:
            raise _unsupported(
                f"messages[{i}].content[{j}]",
                f"content parts of type {kind!r} are not supported: this server takes text and image_url parts.",
            )
        last = kind
    return text


def _tool_call(call: ToolCall) -> dict[str, Any]:
    """An OpenAI tool call as Swift's templates take it: arguments as an object."""
    data = call.model_dump(exclude_none=True)
    function = data["function"]
    args = function.get("arguments")
    if isinstance(args, str):
        with contextlib.suppress(ValueError):
            function["arguments"] = json.loads(args)
    return data


def chat_to_request(
    req: ChatCompletionRequest,
    adapter: str | None,
    default_max_tokens: int | None,
    limits: RequestLimits | None = None,
    tool_format: ToolCallFormat = HERMES,
) -> GenerationRequest:
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if req.max_completion_tokens is not None and not 0 <= req.max_completion_tokens <= MAX_COUNT:
        raise _invalid(
            "max_completion_tokens",
            f"integer out of range. Expected a value between 0 and {MAX_COUNT}, but got "
            f"{req.max_completion_tokens}.",
        )
    fields = _sampling(req, max_tokens, default_max_tokens, limits)
    top = req.top_logprobs or 0
    if top < 0 or top > 20:
        raise _invalid("top_logprobs", f"must be between 0 and 20, got {top}.")
    if top and not req.logprobs:
        raise _invalid("top_logprobs", "top_logprobs needs logprobs set to true.")
    constraint = output_constraint(req)
    forced = forced_tool_call(req, tool_format)
    if forced is not None:
        if constraint is not None:
            raise _invalid(
                "tool_choice", "a forced tool call cannot be combined with response_format or guided_*."
            )
        constraint = forced
    messages = []
    images: list[Any] = []
    for i, m in enumerate(req.messages):
        role = "system" if m.role == "developer" else m.role
        message: dict[str, Any] = {"role": role, "content": _message_text(m, i, images)}
        if m.tool_calls:
            message["tool_calls"] = [_tool_call(c) for c in m.tool_calls]
        if m.tool_call_id:
            message["tool_call_id"] = m.tool_call_id
        if m.name:
            message["name"] = m.name
        messages.append(message)
    tools = [t.model_dump(exclude_none=True) for t in req.tools or []] if req.tool_choice != "none" else None
    return GenerationRequest(
        messages=messages,
        logprobs=bool(req.logprobs),
        top_logprobs=top,
        adapter=adapter,
        tools=tools or None,
        template_options=dict(req.chat_template_kwargs or {}),
        images=images,
        constraint=constraint,
        **fields,
    )


def forced_tool_call(req: ChatCompletionRequest, fmt: ToolCallFormat) -> OutputConstraint | None:
    """tool_choice 'required' or {"type": "function", "function": {"name": ...}}: the grammar of one
    call (to that function) in the template's syntax; None for 'auto', 'none' or no tool_choice."""
    choice = req.tool_choice
    if choice is None or choice in ("auto", "none"):
        return None
    name = None
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if choice.get("type", "function") != "function" or not isinstance(name, str):
            raise _invalid("tool_choice", 'expected {"type": "function", "function": {"name": ...}}.')
    elif choice != "required":
        raise _invalid(
            "tool_choice", f"expected 'none', 'auto', 'required' or a named function, got {choice!r}."
        )
    if not req.tools:
        raise _invalid("tool_choice", "tool_choice 'required' or a named function needs tools.")
    try:
        return tool_call_constraint(fmt, [t.model_dump(exclude_none=True) for t in req.tools], name)
    except UnsupportedRequest as exc:
        raise _invalid("tool_choice", str(exc)) from None


def output_constraint(req: ChatCompletionRequest) -> OutputConstraint | None:
    """The structured output a chat request asks for: OpenAI's `response_format` (json_object,
    json_schema) or one of vLLM's `guided_*` extensions; None for free text."""
    asked: list[tuple[str, OutputConstraint]] = []
    fmt = req.response_format
    if fmt is not None:
        kind = fmt.get("type", "text")
        if kind == "json_object":
            asked.append(("response_format", OutputConstraint(JSON_OBJECT)))
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise _invalid(
                    "response_format.json_schema.schema",
                    "expected a JSON Schema object (json_schema.schema).",
                )
            asked.append(("response_format", OutputConstraint(JSON_SCHEMA, schema)))
        elif kind != "text":
            raise _invalid(
                "response_format.type", f"expected 'text', 'json_object' or 'json_schema', got {kind!r}."
            )
    if req.guided_json is not None:
        schema = req.guided_json
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError:
                raise _invalid(
                    "guided_json", "expected a JSON Schema (an object or its JSON text)."
                ) from None
        asked.append(("guided_json", OutputConstraint(JSON_SCHEMA, schema)))
    if req.guided_regex is not None:
        asked.append(("guided_regex", OutputConstraint(REGEX, req.guided_regex)))
    if req.guided_choice is not None:
        if not req.guided_choice or not all(req.guided_choice):
            raise _invalid("guided_choice", "expected a non-empty list of non-empty strings.")
        asked.append(("guided_choice", OutputConstraint(CHOICE, list(req.guided_choice))))
    if req.guided_grammar is not None:
        asked.append(("guided_grammar", OutputConstraint(GRAMMAR, req.guided_grammar)))
    if len(asked) > 1:
        names = ", ".join(name for name, _ in asked)
        raise _invalid(asked[1][0], f"give one structured-output constraint at most (got {names}).")
    return asked[0][1] if asked else None


def completion_prompts(req: CompletionRequest) -> list[str | list[int]]:
    prompt = req.prompt
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise _invalid("prompt", "the prompt is empty.")
    if isinstance(prompt[0], int):
        return [list(prompt)]  # type: ignore[arg-type]
    return list(prompt)  # type: ignore[arg-type]


def completion_to_requests(
    req: CompletionRequest,
    adapter: str | None,
    default_max_tokens: int | None,
    limits: RequestLimits | None = None,
) -> list[GenerationRequest]:
    fields = _sampling(req, req.max_tokens, default_max_tokens, limits)
    if req.logprobs is not None and not 0 <= req.logprobs <= 20:
        raise _invalid("logprobs", f"must be between 0 and 20, got {req.logprobs}.")
    if req.best_of is not None and req.best_of != fields["n"]:
        raise _unsupported("best_of", "best_of other than n is not supported by this server.")
    if req.suffix:
        raise _unsupported("suffix", "suffix is not supported by this server.")
    if req.stream and req.echo and (req.logprobs is not None or not isinstance(req.prompt, str)):
        raise _unsupported(
            "echo", "streamed completions echo a text prompt only, without logprobs; use stream=false."
        )
    return [
        GenerationRequest(
            prompt=p,
            logprobs=req.logprobs is not None,
            top_logprobs=req.logprobs or 0,
            echo=bool(req.echo),
            adapter=adapter,
            **fields,
        )
        for p in completion_prompts(req)
    ]


# --- responses ----------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _bytes(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def chat_logprobs(items: list[TokenLogprob] | None) -> dict[str, Any] | None:
    if items is None:
        return None
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": _bytes(t.token),
                "top_logprobs": [{"token": s, "logprob": v, "bytes": _bytes(s)} for s, v in t.top],
            }
            for t in items
        ],
        "refusal": None,
    }


def parse_tool_calls(text: str, fmt: ToolCallFormat = HERMES) -> tuple[str | None, list[dict[str, Any]]]:
    """(content, tool calls) of a whole answer, in the template's tool-call syntax (Hermes default)."""
    return fmt.parse(text)


def chat_response(
    rid: str, model: str, response: GenerationResponse, tools: bool, fmt: ToolCallFormat = HERMES
) -> dict[str, Any]:
    choices = []
    for c in response.choices:
        message: dict[str, Any] = {"role": "assistant", "content": c.text, "refusal": None}
        finish = c.finish_reason
        if tools:
            content, calls = parse_tool_calls(c.text, fmt)
            if calls:
                message["content"], message["tool_calls"] = content, calls
                finish = "tool_calls"
        choices.append(
            {
                "index": c.index,
                "message": message,
                "logprobs": chat_logprobs(c.logprobs),
                "finish_reason": finish,
            }
        )
    return {
        "id": rid,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": choices,
        "usage": usage(response.prompt_tokens, response.completion_tokens),
        "system_fingerprint": None,
    }


def chat_chunk(
    rid: str, created: int, model: str, choices: list[dict[str, Any]], include_usage: bool
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
    }
    if include_usage:
        chunk["usage"] = None
    return chunk


def legacy_logprobs(items: list[TokenLogprob], start_offset: int) -> dict[str, Any]:
    """The completions API's `logprobs` object: tokens, token_logprobs, top_logprobs, text_offset."""
    tokens, token_logprobs, top_logprobs, offsets = [], [], [], []
    offset = start_offset
    for t in items:
        tokens.append(t.token)
        token_logprobs.append(t.logprob)
        top_logprobs.append(None if t.logprob is None else dict(t.top))
        offsets.append(offset)
        offset += len(t.token)
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top_logprobs,
        "text_offset": offsets,
    }


def completion_choice(
    index: int, choice: Choice, response: GenerationResponse, request: GenerationRequest
) -> dict[str, Any]:
    prompt_text = response.prompt_text or ""
    text = prompt_text + choice.text if request.echo else choice.text
    logprobs = None
    if request.logprobs:
        items: list[TokenLogprob] = []
        if request.echo:
            items += response.prompt_logprobs or []
        items += choice.logprobs or []
        # text_offset counts from the start of the prompt, as OpenAI's does
        start = 0 if request.echo else (len(request.prompt) if isinstance(request.prompt, str) else 0)
        logprobs = legacy_logprobs(items, start)
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": choice.finish_reason}
