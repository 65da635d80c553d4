"""InternLM2/2.5/3, Yi, Baichuan 2 and MiniCPM formats."""

from __future__ import annotations

from swift_core.templates.base import ChatTemplate
from swift_core.templates.library.qwen import IM_END, IM_START, _turn


class InternLM2Template(ChatTemplate):
    """InternLM2/2.5/3 chat: <s> then ChatML turns, no default system prompt."""

    name = "internlm2"
    description = "InternLM2/2.5/3: <s> + ChatML"
    bos_token = "<s>"
    eos_token = IM_END
    pad_token = "</s>"
    special_tokens = ("<s>", "</s>", IM_START, IM_END)
    stop = (IM_END, "</s>")
    jinja_name = "internlm2"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        b.text(self.bos_token)
        for m in messages:
            _turn(b, m)
        if add_generation_prompt:
            b.text(f"{IM_START}assistant\n")


class YiTemplate(ChatTemplate):
    """Yi-1.5 chat: the system text bare, each user turn followed by the assistant header."""

    name = "yi"
    description = "Yi chat: ChatML user turns that open the assistant turn"
    eos_token = IM_END
    pad_token = "<unk>"
    special_tokens = ("<unk>", "<|startoftext|>", "<|endoftext|>", IM_START, IM_END)
    stop = (IM_END, "<|endoftext|>")
    jinja_name = "yi"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        if messages[0]["role"] == "system":
            b.text(messages[0]["content"])
        for m in messages:
            if m["role"] == "user":
                b.text(f"{IM_START}user\n{m['content']}{IM_END}\n{IM_START}assistant\n")
            elif m["role"] == "assistant":
                b.answer(m["content"] + IM_END, m)
                b.text("\n")
        # The user turn already opens the assistant turn: add_generation_prompt adds nothing.


class Baichuan2Template(ChatTemplate):
    """Baichuan 2 chat: <reserved_106> user, <reserved_107> assistant, no end marker per turn."""

    name = "baichuan2"
    description = "Baichuan 2 chat: <reserved_106>/<reserved_107> turns"
    bos_token = "<s>"
    eos_token = "</s>"
    pad_token = "<unk>"
    special_tokens = ("<s>", "</s>", "<unk>", "<reserved_106>", "<reserved_107>")
    stop = ("</s>",)
    train_stop = "</s>"
    jinja_name = "baichuan2"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        systems = [m["content"] for m in messages if m["role"] == "system"]
        b.text(systems[-1].strip() if systems else "")
        for m in messages:
            if m["role"] == "user":
                b.text("<reserved_106>" + m["content"])
            elif m["role"] == "assistant":
                b.text("<reserved_107>")
                b.answer(m["content"], m)
        if add_generation_prompt and messages[-1]["role"] != "assistant":
            b.text("<reserved_107>")


class MiniCPMTemplate(ChatTemplate):
    """MiniCPM-2B: <用户>question<AI>answer, contents stripped."""

    name = "minicpm"
    description = "MiniCPM-2B: <用户>...<AI>..."
    bos_token = "<s>"
    eos_token = "</s>"
    pad_token = "<unk>"
    special_tokens = ("<s>", "</s>", "<unk>", "<用户>", "<AI>")
    stop = ("</s>",)
    train_stop = "</s>"
    jinja_name = "minicpm"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        for m in messages:
            if m["role"] == "user":
                b.text("<用户>" + m["content"].strip() + "<AI>")
            elif m["role"] == "assistant":
                b.answer(m["content"].strip(), m)
            else:
                b.text(m["content"].strip())
        # The user turn already ends with <AI>: add_generation_prompt adds nothing.
