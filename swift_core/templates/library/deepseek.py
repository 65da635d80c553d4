"""DeepSeek LLM chat, DeepSeek-V2.5/V3 and the DeepSeek-R1 distills."""

from __future__ import annotations

from swift_core.templates.base import ChatTemplate

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"


class DeepSeekTemplate(ChatTemplate):
    """DeepSeek LLM chat: 'User: ...\\n\\nAssistant: ...<eos>'."""

    name = "deepseek"
    description = "DeepSeek LLM chat: User: / Assistant: turns"
    bos_token = BOS
    eos_token = EOS
    pad_token = EOS
    special_tokens = (BOS, EOS)
    stop = (EOS,)
    jinja_name = "deepseek"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        b.text(self.bos_token)
        for m in messages:
            if m["role"] == "user":
                b.text(f"User: {m['content']}\n\n")
            elif m["role"] == "assistant":
                # The generation prompt is "Assistant:", so the answer starts with its space.
                b.text("Assistant:")
                b.answer(f" {m['content']}{self.eos_token}", m)
            elif m["role"] == "system":
                b.text(f"{m['content']}\n\n")
        if add_generation_prompt:
            b.text("Assistant:")


class DeepSeekV3Template(ChatTemplate):
    """DeepSeek-V2.5/V3: <｜User｜> / <｜Assistant｜>; every system message joins the preamble."""

    name = "deepseek_v3"
    description = "DeepSeek-V2.5/V3: <｜User｜>...<｜Assistant｜>...<｜end▁of▁sentence｜>"
    bos_token = BOS
    eos_token = EOS
    pad_token = EOS
    special_tokens = (BOS, EOS, "<｜User｜>", "<｜Assistant｜>")
    stop = (EOS,)
    jinja_name = "deepseek_v3"

    def system_text(self, messages) -> str:
        return "\n\n".join(m["content"] for m in messages if m["role"] == "system")

    def answer_text(self, content: str) -> str:
        return content

    def generation_prompt(self) -> str:
        return "<｜Assistant｜>"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        b.text(self.bos_token + self.system_text(messages))
        for m in messages:
            if m["role"] == "user":
                b.text(f"<｜User｜>{m['content']}")
            elif m["role"] == "assistant":
                b.text("<｜Assistant｜>")
                b.answer(self.answer_text(m["content"]) + self.eos_token, m)
        if add_generation_prompt:
            b.text(self.generation_prompt())


class DeepSeekR1Template(DeepSeekV3Template):
    """R1 distills: the last system message only, reasoning dropped from assistant turns, and
    the generation prompt opens a <think> block."""

    name = "deepseek_r1"
    description = "DeepSeek-R1 distills: as V3, <think> opened in the generation prompt"
    special_tokens = (*DeepSeekV3Template.special_tokens, "<think>", "</think>")
    jinja_name = "deepseek_r1"

    def system_text(self, messages) -> str:
        systems = [m["content"] for m in messages if m["role"] == "system"]
        return systems[-1] if systems else ""

    def answer_text(self, content: str) -> str:
        return content.split("</think>")[-1]

    def generation_prompt(self) -> str:
        return "<｜Assistant｜><think>\n"
