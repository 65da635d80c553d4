"""Gemma 2 and Gemma 3: <start_of_turn>user / model turns, contents trimmed."""

from __future__ import annotations

from swift_core.templates.base import ChatTemplate
from swift_core.templates.library.llama import check_alternation, split_system


class GemmaTemplate(ChatTemplate):
    """Gemma 2: no system role."""

    name = "gemma"
    description = "Gemma 2 instruct: <start_of_turn>user/model, no system role"
    bos_token = "<bos>"
    eos_token = "<end_of_turn>"
    pad_token = "<pad>"
    special_tokens = ("<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>")
    stop = ("<end_of_turn>", "<eos>")
    supports_system = False
    jinja_name = "gemma"

    def turns(self, b, turns, first_prefix: str = "") -> None:
        check_alternation(turns, self.name)
        for i, m in enumerate(turns):
            prefix = first_prefix if i == 0 else ""
            if m["role"] == "assistant":
                b.text(f"<start_of_turn>model\n{prefix}")
                b.answer(m["content"].strip() + "<end_of_turn>", m)
                b.text("\n")
            else:
                b.text(f"<start_of_turn>{m['role']}\n{prefix}{m['content'].strip()}<end_of_turn>\n")

    def build(self, b, messages, tools, add_generation_prompt, **options):
        b.text(self.bos_token)
        self.turns(b, messages)
        if add_generation_prompt:
            b.text("<start_of_turn>model\n")


class Gemma3Template(GemmaTemplate):
    """Gemma 3: a system message is prepended to the first user turn."""

    name = "gemma3"
    description = "Gemma 3 instruct: system text prepended to the first user turn"
    special_tokens = (*GemmaTemplate.special_tokens, "<start_of_image>")
    supports_system = True
    jinja_name = "gemma3"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        system, turns = split_system(messages)
        b.text(self.bos_token)
        self.turns(b, turns, first_prefix=f"{system}\n\n" if system is not None else "")
        if add_generation_prompt:
            b.text("<start_of_turn>model\n")
