"""The chat-template interface.

A template renders messages as a list of `Segment`s: pieces of text, each marked trainable or
not. Joined, the segments are byte-equal to what the model family's official jinja template
renders (tests check this against the official texts); tokenized one by one, they give the
labels, so training learns only the assistant turns and serving builds the very same prompt.
Templates are Python rather than jinja because the mask has to follow the rendering exactly,
including templates that rewrite earlier turns (Qwen3 drops old reasoning), which the usual
"render a prefix and diff" trick cannot follow.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from swift_core.errors import SwiftError
from swift_core.templates.tool_calls import HERMES, ToolCallFormat

Message = dict[str, Any]
ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Segment:
    text: str
    trainable: bool


class Builder:
    """Collects segments; adjacent segments of the same kind are merged."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []

    def _add(self, text: str, trainable: bool) -> None:
        if not text:
            return
        if self.segments and self.segments[-1].trainable == trainable:
            self.segments[-1].text += text
        else:
            self.segments.append(Segment(text, trainable))

    def text(self, text: str) -> None:
        """Prompt text: never trained on."""
        self._add(text, False)

    def answer(self, text: str, message: Message) -> None:
        """Part of an assistant turn: trained on unless the message says `"loss": false`."""
        self._add(text, message.get("loss", True) is not False)


def tojson(value: Any) -> str:
    """transformers' `tojson` filter: json.dumps with ensure_ascii=False and default separators."""
    return json.dumps(value, ensure_ascii=False)


def validate_messages(messages: list[Message]) -> None:
    if not isinstance(messages, list) or not messages:
        raise SwiftError("a conversation needs at least one message")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise SwiftError(f"messages[{i}]: role must be one of {', '.join(ROLES)}, got {m!r:.80}")
        if not isinstance(m.get("content", ""), str):
            raise SwiftError(f"messages[{i}].content must be a string")


class ChatTemplate(ABC):
    """One family's prompt format."""

    name: str = ""
    description: str = ""
    # Tokens of this format: the tiny-model builder adds them to the vocabulary, engines stop on `stop`.
    bos_token: str | None = None
    eos_token: str = ""
    pad_token: str | None = None
    special_tokens: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    default_system: str | None = None
    supports_system: bool = True
    supports_tools: bool = False
    # How this family writes tool calls (parsed by the server, whole or streamed; forced by a grammar
    # for tool_choice "required" or a named function): Hermes <tool_call> blocks unless it says otherwise.
    tool_calls: ToolCallFormat = HERMES
    # Name of the official jinja text in swift_core/templates/jinja/ (for tokenizers and tests).
    jinja_name: str | None = None
    # False where the official template ignores add_generation_prompt (Llama 2, Mistral).
    generation_prompt_matches_jinja: bool = True
    # Formats whose official rendering ends an assistant turn with no end token (GLM-4, Baichuan 2,
    # MiniCPM): for training, this stop text is appended, trainable, after the final assistant
    # turn, so that the model learns to stop. Rendering for inference is unchanged.
    train_stop: str | None = None

    @abstractmethod
    def build(
        self,
        b: Builder,
        messages: list[Message],
        tools: list[Any] | None,
        add_generation_prompt: bool,
        **options: Any,
    ) -> None:
        """Append the segments of `messages` to `b`."""

    def render(
        self,
        messages: list[Message],
        *,
        tools: list[Any] | None = None,
        add_generation_prompt: bool = False,
        for_training: bool = False,
        **options: Any,
    ) -> list[Segment]:
        validate_messages(messages)
        if not self.supports_system and any(m["role"] == "system" for m in messages):
            raise SwiftError(f"template {self.name!r} does not support a system message")
        if tools and not self.supports_tools:
            raise SwiftError(f"template {self.name!r} does not support tools")
        b = Builder()
        self.build(b, messages, tools, add_generation_prompt, **options)
        if for_training and self.train_stop and messages[-1]["role"] == "assistant":
            b.answer(self.train_stop, messages[-1])
        return b.segments

    def render_text(self, messages: list[Message], **kwargs: Any) -> str:
        return "".join(s.text for s in self.render(messages, **kwargs))

    def all_special_tokens(self) -> list[str]:
        tokens = [
            t for t in (self.bos_token, self.eos_token, self.pad_token, *self.special_tokens, *self.stop) if t
        ]
        return list(dict.fromkeys(tokens))
