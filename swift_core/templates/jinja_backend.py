"""The `jinja` template: the tokenizer's own chat template, with labels still masked.

For a model Swift has no built-in template for, the tokenizer's `chat_template` renders the
text. Labels come from rendering growing prefixes of the conversation: the text an assistant
turn adds after the generation prompt of the turns before it is what is trained on. Templates
that rewrite earlier turns when later ones arrive break that prefix property; they are detected
and refused with a clear error instead of being masked wrongly.
"""

from __future__ import annotations

import copy
from typing import Any

from swift_core.errors import SwiftError
from swift_core.templates.base import Builder, ChatTemplate, Message


class JinjaTemplate(ChatTemplate):
    name = "jinja"
    description = "The tokenizer's own chat_template (labels by prefix rendering)"

    def __init__(self, tokenizer: Any = None):
        self.tokenizer = tokenizer
        if tokenizer is not None:
            self.eos_token = tokenizer.eos_token or ""
            self.bos_token = tokenizer.bos_token
            self.pad_token = tokenizer.pad_token
            self.stop = tuple(t for t in (tokenizer.eos_token,) if t)
        self.supports_tools = True

    def bind(self, tokenizer: Any) -> JinjaTemplate:
        return JinjaTemplate(tokenizer)

    def _render(
        self, messages: list[Message], tools: Any, add_generation_prompt: bool, **options: Any
    ) -> str:
        if self.tokenizer is None or not getattr(self.tokenizer, "chat_template", None):
            raise SwiftError("the jinja template needs a tokenizer with a chat_template")
        return self.tokenizer.apply_chat_template(
            copy.deepcopy(messages),
            tools=tools,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **options,
        )

    def build(self, b: Builder, messages, tools, add_generation_prompt, **options):
        full = self._render(messages, tools, add_generation_prompt, **options)
        pos = 0
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = self._render(messages[:i], tools, True, **options) if i else ""
            upto = self._render(messages[: i + 1], tools, False, **options)
            if not (upto.startswith(prompt) and full.startswith(upto) and len(prompt) >= pos):
                raise SwiftError(
                    "this tokenizer's chat_template renders earlier turns differently once later turns are added, "
                    "so labels cannot be masked from it; choose a built-in --template"
                )
            b.text(full[pos : len(prompt)])
            b.answer(upto[len(prompt) :], m)
            pos = len(upto)
        b.text(full[pos:])
