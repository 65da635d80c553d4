"""Llama 2, Llama 3 and Llama 3.1/3.2/3.3 formats."""

from __future__ import annotations

import datetime
import json
from typing import Any

from swift_core.errors import SwiftError
from swift_core.templates.base import Builder, ChatTemplate, Message
from swift_core.templates.tool_calls import LLAMA3_JSON


def split_system(messages: list[Message]) -> tuple[str | None, list[Message]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def check_alternation(messages: list[Message], template: str) -> None:
    for i, m in enumerate(messages):
        if (m["role"] == "user") != (i % 2 == 0):
            raise SwiftError(
                f"template {template!r}: conversation roles must alternate user/assistant/user/..."
            )


class Llama2Template(ChatTemplate):
    name = "llama2"
    description = "Llama 2 chat: [INST] ... [/INST] with <<SYS>> in the first turn"
    bos_token = "<s>"
    eos_token = "</s>"
    pad_token = "<unk>"
    special_tokens = ("<unk>",)
    stop = ("</s>",)
    jinja_name = "llama2"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        system, turns = split_system(messages)
        check_alternation(turns, self.name)
        for i, m in enumerate(turns):
            content = m["content"]
            if i == 0 and system is not None:
                content = f"<<SYS>>\n{system}\n<</SYS>>\n\n{content}"
            if m["role"] == "user":
                b.text(f"{self.bos_token}[INST] {content.strip()} [/INST]")
            else:
                b.text(" ")
                b.answer(f"{content.strip()} {self.eos_token}", m)
        # The official template ignores add_generation_prompt: the prompt ends with " [/INST]".


HEADER = "<|start_header_id|>{role}<|end_header_id|>\n\n"
LLAMA3_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)


class Llama3Template(ChatTemplate):
    name = "llama3"
    description = "Llama 3 Instruct: header ids and <|eot_id|>"
    bos_token = "<|begin_of_text|>"
    eos_token = "<|eot_id|>"
    pad_token = "<|end_of_text|>"
    special_tokens = LLAMA3_TOKENS
    stop = ("<|eot_id|>", "<|end_of_text|>")
    jinja_name = "llama3"

    def turn(self, b: Builder, m: Message, role: str | None = None) -> None:
        role = role or m["role"]
        if role == "assistant":
            b.text(HEADER.format(role=role))
            b.answer(m["content"].strip() + "<|eot_id|>", m)
        else:
            b.text(HEADER.format(role=role) + m["content"].strip() + "<|eot_id|>")

    def build(self, b, messages, tools, add_generation_prompt, **options):
        b.text(self.bos_token)
        for m in messages:
            self.turn(b, m)
        if add_generation_prompt:
            b.text(HEADER.format(role="assistant"))


def _tojson_indent4(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=4)


class Llama31Template(Llama3Template):
    """Llama 3.1 / 3.3: a system header with knowledge and today's dates, JSON tool calls."""

    name = "llama3_1"
    description = "Llama 3.1/3.3 Instruct: dated system header, JSON tool calls"
    special_tokens = (*LLAMA3_TOKENS, "<|eom_id|>", "<|python_tag|>")
    stop = ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")
    supports_tools = True
    jinja_name = "llama3_1"
    tool_calls = LLAMA3_JSON

    def default_date(self) -> str:
        return "26 Jul 2024"

    def build(
        self,
        b,
        messages,
        tools,
        add_generation_prompt,
        date_string: str | None = None,
        tools_in_user_message: bool = True,
        **options,
    ):
        date = date_string or self.default_date()
        system, rest = split_system(messages)
        b.text(self.bos_token + HEADER.format(role="system"))
        if tools:
            b.text("Environment: ipython\n")
        b.text(f"Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n")
        tool_text = "".join(_tojson_indent4(t) + "\n\n" for t in (tools or []))
        if tools and not tools_in_user_message:
            b.text(
                "You have access to the following functions. To call a function, please respond with JSON for a "
                'function call.Respond in the format {"name": function name, "parameters": dictionary of argument '
                "name and its value}.Do not use variables.\n\n" + tool_text
            )
        b.text((system or "").strip() + "<|eot_id|>")
        if tools and tools_in_user_message:
            if not rest:
                raise SwiftError("llama3_1: tools need a first user message to go into")
            first, rest = rest[0], rest[1:]
            b.text(
                HEADER.format(role="user")
                + "Given the following functions, please respond with a JSON for a function call with its proper "
                "arguments that best answers the given prompt.\n\n"
                'Respond in the format {"name": function name, "parameters": dictionary of argument name and its '
                "value}.Do not use variables.\n\n" + tool_text + first["content"].strip() + "<|eot_id|>"
            )
        for m in rest:
            if m["role"] in ("tool", "ipython"):
                b.text(
                    HEADER.format(role="ipython")
                    + json.dumps(m["content"], ensure_ascii=False)
                    + "<|eot_id|>"
                )
            elif m.get("tool_calls"):
                if len(m["tool_calls"]) != 1:
                    raise SwiftError("llama3_1 supports a single tool call per message")
                call = m["tool_calls"][0].get("function", m["tool_calls"][0])
                b.text(HEADER.format(role="assistant"))
                args = json.dumps(call["arguments"], ensure_ascii=False)
                b.answer('{"name": "' + call["name"] + '", "parameters": ' + args + "}<|eot_id|>", m)
            else:
                self.turn(b, m)
        if add_generation_prompt:
            b.text(HEADER.format(role="assistant"))


class Llama32Template(Llama31Template):
    """Llama 3.2: as 3.1, but today's date defaults to the real date (strftime_now)."""

    name = "llama3_2"
    description = "Llama 3.2 Instruct: as 3.1 with the current date"
    jinja_name = "llama3_2"

    def default_date(self) -> str:
        return datetime.datetime.now().strftime("%d %b %Y")
