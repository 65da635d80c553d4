"""Phi-3 / Phi-3.5 (<|user|> ... <|end|>) and Phi-4 (<|im_start|>role<|im_sep|>)."""

from __future__ import annotations

from swift_core.templates.base import ChatTemplate


class Phi3Template(ChatTemplate):
    name = "phi3"
    description = "Phi-3/3.5 instruct: <|user|>\\n...<|end|>\\n<|assistant|>\\n"
    bos_token = "<s>"
    eos_token = "<|endoftext|>"
    pad_token = "<|endoftext|>"
    special_tokens = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>")
    stop = ("<|end|>", "<|endoftext|>")
    jinja_name = "phi3"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        for m in messages:
            if m["role"] == "assistant":
                b.text("<|assistant|>\n")
                b.answer(m["content"] + "<|end|>", m)
                b.text("\n")
            elif m["role"] in ("system", "user"):
                b.text(f"<|{m['role']}|>\n{m['content']}<|end|>\n")
        b.text("<|assistant|>\n" if add_generation_prompt else self.eos_token)


class Phi4Template(ChatTemplate):
    name = "phi4"
    description = "Phi-4: <|im_start|>role<|im_sep|>content<|im_end|>"
    eos_token = "<|im_end|>"
    pad_token = "<|dummy_85|>"
    special_tokens = ("<|endoftext|>", "<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|dummy_85|>")
    stop = ("<|im_end|>", "<|endoftext|>")
    jinja_name = "phi4"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        for m in messages:
            if m["role"] == "assistant":
                b.text("<|im_start|>assistant<|im_sep|>")
                b.answer(m["content"] + "<|im_end|>", m)
            elif m["role"] in ("system", "user"):
                b.text(f"<|im_start|>{m['role']}<|im_sep|>{m['content']}<|im_end|>")
        if add_generation_prompt:
            b.text("<|im_start|>assistant<|im_sep|>")
