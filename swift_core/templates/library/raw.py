"""The raw template for pretraining and base models: the contents, concatenated, nothing added."""

from __future__ import annotations

from swift_core.templates.base import ChatTemplate


class RawTemplate(ChatTemplate):
    """No markup at all: each message's content in order; assistant contents are trainable.

    `swift pt` trains on every token and appends the tokenizer's end-of-text after each document.
    """

    name = "raw"
    description = "No chat markup: contents concatenated (pretraining, base models)"
    eos_token = ""

    def build(self, b, messages, tools, add_generation_prompt, **options):
        for m in messages:
            if m["role"] == "assistant":
                b.answer(m["content"], m)
            else:
                b.text(m["content"])
