"""Mistral Instruct (v0.1/v0.2) and Mixtral: [INST] turns, the system prompt in the first one."""

from __future__ import annotations

from swift_core.errors import SwiftError
from swift_core.templates.base import ChatTemplate
from swift_core.templates.library.llama import check_alternation, split_system


class MistralTemplate(ChatTemplate):
    name = "mistral"
    description = "Mistral/Mixtral Instruct: <s> [INST] ... [/INST] answer</s>"
    bos_token = "<s>"
    eos_token = "</s>"
    pad_token = "<unk>"
    special_tokens = ("<unk>", "[INST]", "[/INST]")
    stop = ("</s>",)
    jinja_name = "mistral"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        system, turns = split_system(messages)
        check_alternation(turns, self.name)
        b.text(self.bos_token)
        for i, m in enumerate(turns):
            if m["role"] == "user":
                content = f"{system}\n\n{m['content']}" if i == 0 and system is not None else m["content"]
                b.text(f" [INST] {content} [/INST]")
            elif m["role"] == "assistant":
                b.text(" ")
                b.answer(m["content"] + self.eos_token, m)
            else:
                raise SwiftError("mistral: only user and assistant roles after an optional system message")
        # The official template ignores add_generation_prompt: the prompt ends with " [/INST]".
