"""Row formats: detect the format of one row by its keys and convert it to the internal form.

The internal form (a plain JSON-serialisable dict)::

    {
      "messages": [{"role": "system"|"user"|"assistant"|"tool", "content": str,
                    optional "loss": bool, optional "tool_calls": list}],
      optional "tools": list,              # OpenAI function schemas
      optional "images": [str],            # absolute paths or URLs
      optional "objects": dict,            # grounding boxes, passed through
      optional "rejected_response": str,   # preference: rejected alternative to the final answer
      optional "label": bool,              # KTO: whether the final answer is desirable
    }

At most one system message, first; then user/assistant alternate, starting with a user turn and
ending with an assistant turn (tool messages may follow an assistant message with `tool_calls`).

Everything here is pure Python and cheap to import. A problem with a row raises `RowError(field,
message)`; the loader adds the file and the line.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

ROLES = ("system", "user", "assistant", "tool")
IMAGE_TAG = "<image>"

# Human-readable list used in "unknown format" errors and docs.
FORMATS: dict[str, str] = {
    "messages": "'messages': [{role, content}, ...] (OpenAI style), optional 'tools'",
    "sharegpt": "'conversations': [{from, value}, ...] (ShareGPT), optional 'system', 'tools'",
    "alpaca": "'instruction', 'output', optional 'input', 'system', 'history'",
    "query-response": "'query', 'response', optional 'history', 'system'",
    "prompt-completion": "'prompt', 'completion' (strings or message lists)",
    "text": "'text': a plain document (pretraining with `swift pt`); becomes one assistant message",
    "preference": (
        "'chosen' and 'rejected' (strings with 'prompt'/'query'/'instruction', message lists, "
        "or Anthropic hh-rlhf text); or 'rejected_response' / 'rejected_messages' next to an SFT format"
    ),
}
PROMPT_KEYS = ("prompt", "query", "instruction")

_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
    "observation": "tool",
    "function": "tool",
    "tool": "tool",
    "function_call": "assistant",
}
_MESSAGE_ROLES = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^data:")
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


class RowError(ValueError):
    """A problem with one row: the field (a path such as 'messages[1].content') and what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"field {field!r}: {message}")
        self.field = field
        self.message = message


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _present(row: dict[str, Any], key: str) -> bool:
    """The key is there with a value (None and '' count as absent: empty CSV cells, unified schemas)."""
    value = row.get(key)
    return value is not None and value != ""


def _maybe_json(value: Any, want: type | tuple[type, ...]) -> Any:
    """A JSON string (from CSV or a stringified column) holding a list/object becomes that value."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, want):
            return parsed
    return value


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) for m in value)


def _as_messages_or_text(value: Any) -> Any:
    """For fields that may be text or a message list: parse a JSON string only if it is a message list."""
    parsed = _maybe_json(value, list)
    return parsed if _is_message_list(parsed) else value


# --- building messages ---------------------------------------------------------------------------


class _Builder:
    """Messages being converted, each with the source field it came from, plus content images."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.images: list[str] = []

    def add(self, role: str, content: str, path: str, **extra: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": role, "content": content}
        msg.update({k: v for k, v in extra.items() if v is not None})
        self.messages.append(msg)
        self.paths.append(path)
        return msg

    def extend(self, other: _Builder) -> None:
        self.messages += other.messages
        self.paths += other.paths
        self.images += other.images


def _text(value: Any, field: str, builder: _Builder | None = None) -> str:
    """A message text: a string, or an OpenAI content list (text parts and images)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and builder is not None:
        return _content_list(value, field, builder)
    raise RowError(field, f"expected a string, got {json_type(value)}")


def _content_list(parts: list[Any], field: str, builder: _Builder) -> str:
    out: list[str] = []
    for j, part in enumerate(parts):
        pfield = f"{field}[{j}]"
        if isinstance(part, str):
            out.append(part)
            continue
        if not isinstance(part, dict):
            raise RowError(pfield, f"expected a content part object, got {json_type(part)}")
        kind = part.get("type")
        if kind == "text" or (kind is None and "text" in part):
            out.append(_text(part.get("text"), f"{pfield}.text"))
        elif kind in ("image_url", "image"):
            url = part.get(kind)
            if isinstance(url, dict):
                url = url.get("url")
            if not isinstance(url, str) or not url:
                raise RowError(f"{pfield}.{kind}", f"expected an image url or path, got {json_type(url)}")
            builder.images.append(url)
            out.append(IMAGE_TAG)
        else:
            raise RowError(
                f"{pfield}.type", f"unsupported content part type {kind!r}; expected text or image_url"
            )
    return "".join(out)


def _tool_calls(value: Any, field: str) -> list[Any] | None:
    value = _maybe_json(value, (list, dict))
    if value is None or value == []:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise RowError(field, f"expected a list of tool call objects, got {json_type(value)}")
    return value


def _loss(value: Any, field: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise RowError(field, f"expected true or false, got {json_type(value)}")


def _openai_message(msg: Any, path: str, builder: _Builder) -> None:
    if not isinstance(msg, dict):
        raise RowError(path, f"expected a message object, got {json_type(msg)}")
    if "role" not in msg and "from" in msg:  # a ShareGPT item inside a message list
        _sharegpt_item(msg, path, builder)
        return
    role = msg.get("role")
    if role is None:
        raise RowError(f"{path}.role", "missing")
    if role not in _MESSAGE_ROLES:
        raise RowError(f"{path}.role", f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    role = _MESSAGE_ROLES[role]
    tool_calls = _tool_calls(msg.get("tool_calls"), f"{path}.tool_calls")
    if tool_calls is not None and role != "assistant":
        raise RowError(f"{path}.tool_calls", f"only assistant messages can have tool_calls, not {role!r}")
    content = msg.get("content")
    if content is None and tool_calls is not None:
        content = ""
    if "content" not in msg and tool_calls is None:
        raise RowError(f"{path}.content", "missing")
    text = _text(content, f"{path}.content", builder)
    builder.add(role, text, path, loss=_loss(msg.get("loss"), f"{path}.loss"), tool_calls=tool_calls)


def _sharegpt_function_call(value: str, field: str) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise RowError(field, 'a function_call value must be JSON: {"name": ..., "arguments": ...}') from None
    calls = parsed if isinstance(parsed, list) else [parsed]
    out = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise RowError(field, 'a function_call value must be JSON: {"name": ..., "arguments": ...}')
        out.append(
            {"type": "function", "function": {"name": call["name"], "arguments": call.get("arguments", {})}}
        )
    return out


def _sharegpt_item(item: Any, path: str, builder: _Builder) -> None:
    if not isinstance(item, dict):
        raise RowError(path, f"expected a {{from, value}} object, got {json_type(item)}")
    if "from" not in item and "role" in item:  # an OpenAI message inside conversations
        _openai_message(item, path, builder)
        return
    source = item.get("from")
    if source is None:
        raise RowError(f"{path}.from", "missing")
    if source not in _SHAREGPT_ROLES:
        raise RowError(
            f"{path}.from",
            f"unknown speaker {source!r}; expected one of {', '.join(sorted(_SHAREGPT_ROLES))}",
        )
    if "value" not in item:
        raise RowError(f"{path}.value", "missing")
    value = _text(item.get("value"), f"{path}.value", builder)
    loss = _loss(item.get("loss"), f"{path}.loss")
    if source == "function_call":
        calls = _sharegpt_function_call(value, f"{path}.value")
        prev = builder.messages[-1] if builder.messages else None
        if prev is not None and prev["role"] == "assistant":  # "gpt" text then its function call(s)
            prev.setdefault("tool_calls", []).extend(calls)
            return
        builder.add("assistant", "", path, loss=loss, tool_calls=calls)
        return
    builder.add(_SHAREGPT_ROLES[source], value, path, loss=loss)


def _message_list(value: Any, field: str, *, sharegpt: bool = False) -> _Builder:
    value = _maybe_json(value, list)
    if not isinstance(value, list):
        raise RowError(field, f"expected a list of messages, got {json_type(value)}")
    if not value:
        raise RowError(field, "empty list")
    builder = _Builder()
    for i, msg in enumerate(value):
        (_sharegpt_item if sharegpt else _openai_message)(msg, f"{field}[{i}]", builder)
    return builder


def _history(row: dict[str, Any], builder: _Builder) -> None:
    if not _present(row, "history"):
        return
    history = _maybe_json(row["history"], list)
    if not isinstance(history, list):
        raise RowError("history", f"expected a list of [query, response] pairs, got {json_type(history)}")
    for i, pair in enumerate(history):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise RowError(f"history[{i}]", f"expected a [query, response] pair, got {json_type(pair)}")
        builder.add("user", _text(pair[0], f"history[{i}][0]"), f"history[{i}][0]")
        builder.add("assistant", _text(pair[1], f"history[{i}][1]"), f"history[{i}][1]")


def _required(row: dict[str, Any], key: str) -> Any:
    if key not in row or row[key] is None:
        raise RowError(key, "missing" if key not in row else "expected a string, got null")
    return row[key]


def _system(row: dict[str, Any], builder: _Builder) -> None:
    if _present(row, "system"):
        builder.add("system", _text(row["system"], "system"), "system")


def _prepend_system(row: dict[str, Any], builder: _Builder) -> _Builder:
    """A top-level 'system' goes first unless the conversation already has one."""
    if not _present(row, "system"):
        return builder
    if builder.messages and builder.messages[0]["role"] == "system":
        raise RowError("system", "given both as a top-level field and as the first message")
    out = _Builder()
    _system(row, out)
    out.extend(builder)
    return out


# --- formats ------------------------------------------------------------------------------------


def detect_format(row: dict[str, Any]) -> str:
    """The format of a row, by its keys; RowError when none fits."""
    if not isinstance(row, dict):
        raise RowError("(row)", f"expected an object, got {json_type(row)}")
    if row.get("chosen") is not None or row.get("rejected") is not None:
        return "preference"
    if "messages" in row:
        return "messages"
    if "conversations" in row:
        return "sharegpt"
    if "instruction" in row:
        return "alpaca"
    if "query" in row or "response" in row:
        return "query-response"
    if "prompt" in row or "completion" in row:
        return "prompt-completion"
    if "text" in row:
        return "text"
    keys = ", ".join(repr(k) for k in row) or "(none)"
    accepted = "; ".join(f"{name}: {desc}" for name, desc in FORMATS.items())
    raise RowError("(row)", f"unknown format: keys found {keys}; accepted formats: {accepted}")


def _messages_format(row: dict[str, Any], answer_optional: bool = False) -> _Builder:
    return _prepend_system(row, _message_list(row["messages"], "messages"))


def _sharegpt_format(row: dict[str, Any], answer_optional: bool = False) -> _Builder:
    return _prepend_system(row, _message_list(row["conversations"], "conversations", sharegpt=True))


def _add_answer(row: dict[str, Any], key: str, builder: _Builder, answer_optional: bool) -> None:
    """The answer field as the assistant turn; for inference rows (answer optional) it may be absent."""
    if answer_optional and (key not in row or row[key] is None):
        return
    builder.add("assistant", _text(_required(row, key), key), key)


def _alpaca_format(row: dict[str, Any], answer_optional: bool = False) -> _Builder:
    builder = _Builder()
    _system(row, builder)
    _history(row, builder)
    instruction = _text(_required(row, "instruction"), "instruction")
    extra = _text(row["input"], "input") if _present(row, "input") else ""
    query = "\n".join(p for p in (instruction, extra) if p)
    builder.add("user", query, "instruction")
    _add_answer(row, "output", builder, answer_optional)
    return builder


def _query_response_format(row: dict[str, Any], answer_optional: bool = False) -> _Builder:
    builder = _Builder()
    _system(row, builder)
    _history(row, builder)
    builder.add("user", _text(_required(row, "query"), "query", builder), "query")
    _add_answer(row, "response", builder, answer_optional)
    return builder


def _turns(value: Any, field: str, role: str) -> _Builder:
    """A prompt or completion: a string (one `role` message) or a message list."""
    value = _as_messages_or_text(value)
    if isinstance(value, list):
        return _message_list(value, field)
    builder = _Builder()
    builder.add(role, _text(value, field), field)
    return builder


def _prompt_completion_format(row: dict[str, Any], answer_optional: bool = False) -> _Builder:
    builder = _turns(_required(row, "prompt"), "prompt", "user")
    if not (answer_optional and row.get("completion") is None):
        builder.extend(_turns(_required(row, "completion"), "completion", "assistant"))
    return _prepend_system(row, builder)


# The field named when a conversation as a whole is wrong (e.g. it does not end with an answer).
_ROOT_FIELD = {
    "messages": "messages",
    "sharegpt": "conversations",
    "alpaca": "output",
    "query-response": "response",
    "prompt-completion": "completion",
}

_SFT_FORMATS = {
    "messages": _messages_format,
    "sharegpt": _sharegpt_format,
    "alpaca": _alpaca_format,
    "query-response": _query_response_format,
    "prompt-completion": _prompt_completion_format,
}


# --- preference ---------------------------------------------------------------------------------


def _hh_turns(text: str, field: str) -> list[tuple[str, str]]:
    """Anthropic hh-rlhf text ('\\n\\nHuman: ...\\n\\nAssistant: ...') as (role, text) turns."""
    body = text if text.startswith("\n\n") else "\n\n" + text.lstrip()
    parts = _HH_TURN.split(body)
    if parts[0].strip():
        raise RowError(field, "hh-rlhf text must start with '\\n\\nHuman:'")
    turns = []
    for i in range(1, len(parts), 2):
        role = "user" if parts[i] == "Human" else "assistant"
        expected = "user" if not turns or turns[-1][0] == "assistant" else "assistant"
        if role != expected:
            raise RowError(field, "hh-rlhf turns must alternate '\\n\\nHuman:' and '\\n\\nAssistant:'")
        turns.append((role, parts[i + 1].strip()))
    if not turns:
        raise RowError(field, "no '\\n\\nHuman:' / '\\n\\nAssistant:' turns found")
    return turns


def _hh_builder(text: str, field: str) -> _Builder:
    builder = _Builder()
    for role, content in _hh_turns(text, field):
        builder.add(role, content, field)
    return builder


def _prompt_builder(row: dict[str, Any]) -> _Builder:
    """The prompt of a preference row given as text: system, history, then the prompt field."""
    builder = _Builder()
    _system(row, builder)
    _history(row, builder)
    key = next(k for k in PROMPT_KEYS if _present(row, k))
    value = _as_messages_or_text(row[key])
    if isinstance(value, list):
        builder.extend(_message_list(value, key))
        return builder
    text = _text(value, key, builder)
    if key == "instruction" and _present(row, "input"):
        text = "\n".join(p for p in (text, _text(row["input"], "input")) if p)
    builder.add("user", text, key)
    return builder


def _dialogue_prompt(row: dict[str, Any]) -> _Builder | None:
    """The prompt of a LLaMA-Factory style row: 'conversations' or 'messages' before chosen/rejected."""
    if _present(row, "conversations"):
        return _sharegpt_format(row)
    if _present(row, "messages"):
        return _messages_format(row)
    if any(_present(row, k) for k in PROMPT_KEYS):
        return _prompt_builder(row)
    return None


def _answer_text(value: Any, field: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        b = _Builder()
        _openai_message(value, field, b)
        if b.messages[-1]["role"] != "assistant":
            raise RowError(field, f"expected an assistant message, got role {b.messages[-1]['role']!r}")
        text = b.messages[-1]["content"]
    else:
        raise RowError(field, f"expected a string, got {json_type(value)}")
    if not text.strip():
        raise RowError(field, "empty: no answer text")
    return text


def _side(row: dict[str, Any], key: str) -> _Builder:
    """One side (chosen or rejected) of a preference row, as the full conversation."""
    value = row.get(key)
    if value is None:
        raise RowError(key, "missing" if key not in row else "expected a string or a message list, got null")
    value = _as_messages_or_text(value)
    if isinstance(value, list):
        if not value:
            raise RowError(key, "empty list")
        side = _message_list(value, key)
        if side.messages[0]["role"] in ("user", "system"):  # the full conversation (implicit prompt)
            return side
        prompt = _dialogue_prompt(row)
        if prompt is None:
            raise RowError(key, "the list has no user turn and the row has no 'prompt' field")
        prompt.extend(side)
        return prompt
    if isinstance(value, dict):
        prompt = _dialogue_prompt(row)
        if prompt is None:
            raise RowError(
                key, "a single message needs the prompt in 'conversations', 'messages' or 'prompt'"
            )
        prompt.add("assistant", _answer_text(value, key), key)
        return prompt
    if not isinstance(value, str):
        raise RowError(key, f"expected a string or a message list, got {json_type(value)}")
    prompt = _dialogue_prompt(row)
    if prompt is not None:
        prompt.add("assistant", _answer_text(value, key), key)
        return prompt
    if "\n\nHuman:" in value or value.lstrip().startswith("Human:"):
        return _hh_builder(value, key)
    if not value.strip():
        raise RowError(key, "empty: no answer text")
    raise RowError(
        "prompt",
        "chosen/rejected strings need a 'prompt', 'query' or 'instruction' field "
        "(or Anthropic hh-rlhf text with '\\n\\nHuman:' and '\\n\\nAssistant:' turns)",
    )


def _same_message(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["role"], a["content"], a.get("tool_calls")) == (b["role"], b["content"], b.get("tool_calls"))


def _rejected_response(chosen: _Builder, rejected: _Builder, field: str) -> str:
    """The rejected answer, after checking both sides share everything before the final answer."""
    c, r = chosen.messages, rejected.messages
    if not r or r[-1]["role"] != "assistant":
        raise RowError(field, "must end with an assistant message (the rejected answer)")
    if len(c) != len(r) or not all(_same_message(x, y) for x, y in zip(c[:-1], r[:-1], strict=True)):
        where = next(
            (i for i, (x, y) in enumerate(zip(c[:-1], r[:-1], strict=False)) if not _same_message(x, y)),
            min(len(c), len(r)) - 1,
        )
        raise RowError(
            field,
            f"must share everything before the final assistant turn with the chosen messages; "
            f"they differ at message {where} (chosen has {len(c)} messages, rejected {len(r)})",
        )
    text = r[-1]["content"]
    if not text.strip():
        raise RowError(field, "empty: no rejected answer text")
    return text


def _preference_format(row: dict[str, Any]) -> tuple[_Builder, str]:
    chosen = _side(row, "chosen")
    rejected = _side(row, "rejected")
    final = chosen.messages[-1]
    if final["role"] != "assistant":
        raise RowError("chosen", "must end with an assistant message (the chosen answer)")
    if not final["content"].strip() and not final.get("tool_calls"):
        raise RowError("chosen", "empty: no answer text")
    return chosen, _rejected_response(chosen, rejected, "rejected")


# --- checks and the other fields ----------------------------------------------------------------


def check_structure(builder: _Builder, root: str, answer_optional: bool = False) -> None:
    """One leading system message; user/assistant alternate; tool turns only after tool calls.

    Training rows end with an answer; inference rows (`answer_optional`) may end with the turn the
    model is to answer (a user or tool message).
    """
    msgs, paths = builder.messages, builder.paths
    if not msgs:
        raise RowError(root, "no messages")
    prev: dict[str, Any] | None = None
    for i, (msg, path) in enumerate(zip(msgs, paths, strict=True)):
        role = msg["role"]
        if role == "system":
            if i != 0:
                raise RowError(
                    f"{path}.role" if "[" in path else path, "a system message is only allowed first"
                )
            continue
        if prev is None:
            allowed = ("user",)
        elif prev["role"] == "user":
            allowed = ("assistant",)
        elif prev["role"] == "tool":
            allowed = ("tool", "assistant")
        elif prev.get("tool_calls"):
            allowed = ("tool", "user")
        else:
            allowed = ("user",)
        if role not in allowed:
            after = f"after a {prev['role']!r} message" if prev else "first (after any system message)"
            raise RowError(
                f"{path}.role" if "[" in path else path,
                f"expected {' or '.join(repr(a) for a in allowed)} {after}, got {role!r} "
                "(roles must alternate user/assistant; tool messages follow an assistant's tool_calls)",
            )
        prev = msg
    last = msgs[-1]
    if answer_optional and last["role"] in ("user", "tool"):
        return
    if last["role"] != "assistant":
        raise RowError(root, f"the conversation must end with an assistant message, not {last['role']!r}")
    if not last["content"].strip() and not last.get("tool_calls"):
        raise RowError(
            paths[-1] + (".content" if "[" in paths[-1] else ""), "empty: the final answer has no text"
        )


def _resolve_image(value: Any, field: str, base_dir: str | None) -> str:
    if isinstance(value, dict):  # a hub Image feature that was not materialised
        value = value.get("path") or value.get("url")
    if not isinstance(value, str) or not value:
        raise RowError(field, f"expected an image path or URL, got {json_type(value)}")
    if _URL.match(value):
        if value.startswith("file://"):
            value = value[len("file://") :]
        else:
            return value
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        if base_dir is None:
            return value
        path = os.path.join(base_dir, path)
    path = os.path.normpath(os.path.abspath(path))
    if not os.path.exists(path):
        raise RowError(field, f"image file not found: {path}")
    return path


def _images(row: dict[str, Any], builder: _Builder, base_dir: str | None) -> list[str]:
    key = "images" if "images" in row else "image"
    raw = row.get(key)
    raw = _maybe_json(raw, list)
    if raw is None or raw == "" or raw == []:
        items: list[tuple[Any, str]] = []
    elif isinstance(raw, (str, dict)):
        items = [(raw, key)]
    elif isinstance(raw, list):
        items = [(v, f"{key}[{i}]") for i, v in enumerate(raw)]
    else:
        raise RowError(key, f"expected a path, a URL or a list of them, got {json_type(raw)}")
    n = len(items)
    items += [(url, f"{key}[{n + i}] (from a content part)") for i, url in enumerate(builder.images)]
    return [_resolve_image(v, f, base_dir) for v, f in items]


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise RowError("label", f"expected true/false (or 1/0), got {json_type(value)} {value!r}")


def convert_row(
    row: dict[str, Any], base_dir: str | None = None, answer_optional: bool = False
) -> dict[str, Any]:
    """Convert one row of any supported format to the internal form.

    `base_dir` is the data file's folder: relative image paths are resolved against it (and must
    exist). `answer_optional`: rows for inference may stop at the prompt (no output/response/
    completion, or messages ending with a user turn). Raises `RowError` naming the field.
    """
    fmt = detect_format(row)
    if fmt == "text":
        text = _text(row["text"], "text")
        if not text.strip():
            raise RowError("text", "empty: the document has no text")
        return {"messages": [{"role": "assistant", "content": text}]}
    rejected: str | None = None
    if fmt == "preference":
        builder, rejected = _preference_format(row)
        root = "chosen"
    else:
        builder = _SFT_FORMATS[fmt](row, answer_optional)
        root = _ROOT_FIELD[fmt]
    check_structure(builder, root, answer_optional)

    if _present(row, "rejected_response") and _present(row, "rejected_messages"):
        raise RowError(
            "rejected_messages", "give either 'rejected_response' or 'rejected_messages', not both"
        )
    if fmt != "preference" and row.get("rejected_response") is not None:
        rejected = _text(row["rejected_response"], "rejected_response")
        if not rejected.strip():
            raise RowError("rejected_response", "empty: no rejected answer text")
    if fmt != "preference" and row.get("rejected_messages") is not None:
        other = _message_list(row["rejected_messages"], "rejected_messages")
        if _present(row, "system") and other.messages[0]["role"] != "system":
            other = _prepend_system(row, other)  # the top-level system applies to both sides
        rejected = _rejected_response(builder, other, "rejected_messages")

    out: dict[str, Any] = {"messages": builder.messages}
    if _present(row, "tools"):
        tools = _maybe_json(row["tools"], (list, dict))
        if isinstance(tools, dict):
            tools = [tools]
        if not isinstance(tools, list):
            raise RowError("tools", f"expected a list of tool schemas, got {json_type(tools)}")
        if tools:
            out["tools"] = tools
    images = _images(row, builder, base_dir)
    tags = sum(m["content"].count(IMAGE_TAG) for m in builder.messages)
    if tags and tags != len(images):
        raise RowError(
            "images", f"the messages have {tags} {IMAGE_TAG} tag(s) but the row has {len(images)} image(s)"
        )
    if images:
        out["images"] = images
    if _present(row, "objects"):
        objects = _maybe_json(row["objects"], dict)
        if not isinstance(objects, dict):
            raise RowError("objects", f"expected an object, got {json_type(objects)}")
        out["objects"] = objects
    if rejected is not None:
        out["rejected_response"] = rejected
    if "label" in row and row["label"] is not None and row["label"] != "":
        out["label"] = _label(row["label"])
    return out
