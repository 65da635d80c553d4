"""Each template's tool-call syntax: how a call is written, how an answer's calls are parsed (whole,
or incrementally while it streams), so that the server turns a model's text into OpenAI's
`tool_calls` the way that model family writes them.

- `HermesToolCalls` (Qwen2.5, Qwen3, and the default): `<tool_call>\\n{"name": ..., "arguments": ...}
  \\n</tool_call>` blocks after optional content;
- `JsonToolCalls` (Llama 3.1/3.2): the whole answer is `{"name": ..., "parameters": ...}`.

A format also says how the call to one named function begins and ends (`call_affixes`), which is
what the engine kit needs to force a call with a grammar (tool_choice "required" or a name).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def call_dict(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    """One OpenAI tool call; arguments as JSON text."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {"id": call_id or new_call_id(), "type": "function", "function": {"name": name, "arguments": args}}


@dataclass
class ToolDelta:
    """An increment of a streamed answer: content text, or a piece of tool call `index` (its id and
    name come with its first piece, then pieces of its arguments' JSON text)."""

    content: str = ""
    index: int | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""


def holdback(text: str, marker: str) -> int:
    """How many characters at the end of `text` could begin `marker`."""
    for k in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:k]):
            return k
    return 0


class ToolCallFormat:
    """How one family writes tool calls."""

    name = ""
    key = "arguments"  # the JSON key of a call's arguments

    def call_affixes(self, function: str) -> tuple[str, str]:
        """The text before and after the arguments' JSON of a call to `function`."""
        raise NotImplementedError

    def separator(self) -> str | None:
        """What goes between two calls of one answer (None: one call per answer)."""
        return None

    def parse(self, text: str) -> tuple[str | None, list[dict[str, Any]]]:
        """(content, calls) of a whole answer; ([text], []) when it holds no valid call."""
        raise NotImplementedError

    def streamer(self) -> ToolStream:
        raise NotImplementedError


class ToolStream:
    """Incremental parsing of one streamed answer: `feed` each text increment, then `finish`."""

    def __init__(self) -> None:
        self.calls = 0

    def feed(self, text: str) -> list[ToolDelta]:
        raise NotImplementedError

    def finish(self) -> list[ToolDelta]:
        raise NotImplementedError


# -- Hermes --------------------------------------------------------------------------------------

_OPEN, _CLOSE = "<tool_call>", "</tool_call>"
_HERMES_BLOCK = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)
_HERMES_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')
_TAIL = re.compile(r"\}\s*$")


def _call_from(data: Any, key: str) -> dict[str, Any] | None:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    return call_dict(data["name"], data.get(key, {}))


class HermesToolCalls(ToolCallFormat):
    name = "hermes"

    def call_affixes(self, function: str) -> tuple[str, str]:
        return (
            f'{_OPEN}\n{{"name": {json.dumps(function, ensure_ascii=False)}, "arguments": ',
            f"}}\n{_CLOSE}",
        )

    def separator(self) -> str | None:
        return "\n"

    def parse(self, text: str) -> tuple[str | None, list[dict[str, Any]]]:
        calls = []
        for match in _HERMES_BLOCK.finditer(text):
            try:
                call = _call_from(json.loads(match.group(1)), "arguments")
            except ValueError:
                return text, []
            if call is None:
                return text, []
            calls.append(call)
        if not calls:
            return text, []
        content = text[: text.index(_OPEN)].strip()
        return content or None, calls

    def streamer(self) -> ToolStream:
        return HermesStream()


@dataclass
class _Block:
    """The tool-call block being streamed."""

    text: str = ""  # everything after <tool_call>
    index: int = 0
    head_end: int | None = None  # where the arguments' JSON starts in `text`, once the name is known
    sent: int = 0  # argument characters sent so far (from head_end)
    extra: list[str] = field(default_factory=list)


class HermesStream(ToolStream):
    """Content until `<tool_call>`; in a block, the call's id and name as soon as its head is read,
    then its arguments as they arrive, holding back what may be the block's closing `}`. A block
    that does not begin with `{"name": ..., "arguments": ` is parsed whole at `</tool_call>`."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = ""  # content not yet sent (it may begin a <tool_call>)
        self.block: _Block | None = None
        self.content_sent = False

    def feed(self, text: str) -> list[ToolDelta]:
        out: list[ToolDelta] = []
        if self.block is None:
            self.pending += text
            start = self.pending.find(_OPEN)
            if start < 0:
                keep = holdback(self.pending, _OPEN)
                send, self.pending = (
                    self.pending[: len(self.pending) - keep],
                    self.pending[len(self.pending) - keep :],
                )
                if send and self.calls == 0:  # content after calls is dropped, as in parse()
                    out.append(ToolDelta(content=send))
                return out
            before, rest = self.pending[:start], self.pending[start + len(_OPEN) :]
            if before and self.calls == 0:
                out.append(ToolDelta(content=before))
            self.pending = ""
            self.block = _Block(index=self.calls)
            text = rest
        out += self._feed_block(text)
        return out

    def _feed_block(self, text: str) -> list[ToolDelta]:
        block = self.block
        assert block is not None
        block.text += text
        out: list[ToolDelta] = []
        if block.head_end is None:
            match = _HERMES_HEAD.match(block.text)
            if match:
                block.head_end = match.end()
                name = json.loads(f'"{match.group(1)}"')
                out.append(ToolDelta(index=block.index, call_id=new_call_id(), name=name))
        close = block.text.find(_CLOSE)
        body = block.text if close < 0 else block.text[:close]
        if block.head_end is not None:
            args_text = body[block.head_end :]
            if close >= 0:
                end = _TAIL.search(args_text)
                args = args_text[: end.start()] if end else args_text
            else:  # hold back from the last "}": it may close the call (a partial </tool_call> follows it)
                cut = args_text.rfind("}")
                args = args_text[:cut] if cut >= 0 else args_text
            if len(args) > block.sent:
                out.append(ToolDelta(index=block.index, arguments=args[block.sent :]))
                block.sent = len(args)
        elif close >= 0:  # not the usual head: the whole block as one call, if it is one
            try:
                call = _call_from(json.loads(body), "arguments")
            except ValueError:
                call = None
            if call is not None:
                fn = call["function"]
                out.append(
                    ToolDelta(
                        index=block.index, call_id=call["id"], name=fn["name"], arguments=fn["arguments"]
                    )
                )
            elif self.calls == 0:
                out.append(ToolDelta(content=_OPEN + block.text[: close + len(_CLOSE)]))
                self.calls -= 1  # not a call
        if close >= 0:
            rest = block.text[close + len(_CLOSE) :]
            self.block = None
            self.calls += 1
            if rest:
                out += self.feed(rest)
        return out

    def finish(self) -> list[ToolDelta]:
        out: list[ToolDelta] = []
        if self.block is not None:  # an unclosed block (max_tokens): what it holds is content
            if self.calls == 0 and self.block.head_end is None:
                out.append(ToolDelta(content=_OPEN + self.block.text))
            self.block = None
        elif self.pending and self.calls == 0:
            out.append(ToolDelta(content=self.pending))
        self.pending = ""
        return out


# -- Llama 3.1 JSON ------------------------------------------------------------------------------


class JsonToolCalls(ToolCallFormat):
    """Llama 3.1/3.2: the answer is one JSON object {"name": ..., "parameters": ...}."""

    name = "llama3_json"
    key = "parameters"

    def call_affixes(self, function: str) -> tuple[str, str]:
        return f'{{"name": {json.dumps(function, ensure_ascii=False)}, "parameters": ', "}"

    def parse(self, text: str) -> tuple[str | None, list[dict[str, Any]]]:
        stripped = text.strip()
        if not stripped.startswith("{"):
            return text, []
        try:
            call = _call_from(json.loads(stripped), "parameters")
        except ValueError:
            return text, []
        return (None, [call]) if call else (text, [])

    def streamer(self) -> ToolStream:
        return JsonStream(self)


class JsonStream(ToolStream):
    """Content streams as it comes unless the answer begins with `{`: then it is held to the end
    and parsed whole (its arguments come in one piece)."""

    def __init__(self, fmt: JsonToolCalls) -> None:
        super().__init__()
        self.fmt = fmt
        self.text = ""
        self.holding: bool | None = None

    def feed(self, text: str) -> list[ToolDelta]:
        self.text += text
        if self.holding is None and self.text.strip():
            self.holding = self.text.lstrip().startswith("{")
            if not self.holding:
                return [ToolDelta(content=self.text)]
            return []
        if self.holding is False and text:
            return [ToolDelta(content=text)]
        return []

    def finish(self) -> list[ToolDelta]:
        if not self.holding:
            return [] if self.holding is False or not self.text else [ToolDelta(content=self.text)]
        content, calls = self.fmt.parse(self.text)
        if not calls:
            return [ToolDelta(content=self.text)]
        self.calls = 1
        fn = calls[0]["function"]
        return [ToolDelta(index=0, call_id=calls[0]["id"], name=fn["name"], arguments=fn["arguments"])]


HERMES = HermesToolCalls()
LLAMA3_JSON = JsonToolCalls()
