"""GLM-4 (GLM-4-9B-0414 and the -hf chat port): [gMASK]<sop><|user|>\\n...<|assistant|>\\n..."""

from __future__ import annotations

from swift_core.templates.base import ChatTemplate


class GLM4Template(ChatTemplate):
    """System messages first, then the turns. An assistant turn has no end token: the model
    stops by emitting <|user|>, which training appends after the final answer."""

    name = "glm4"
    description = "GLM-4: [gMASK]<sop>, <|system|>/<|user|>/<|assistant|> turns"
    eos_token = "<|endoftext|>"
    pad_token = "<|endoftext|>"
    special_tokens = (
        "[gMASK]",
        "<sop>",
        "<|system|>",
        "<|user|>",
        "<|assistant|>",
        "<|observation|>",
        "<|endoftext|>",
    )
    stop = ("<|user|>", "<|observation|>", "<|endoftext|>")
    train_stop = "<|user|>"
    jinja_name = "glm4"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        b.text("[gMASK]<sop>")
        for m in messages:
            if m["role"] == "system":
                b.text(f"<|system|>\n{m['content']}")
        for m in messages:
            if m["role"] == "user":
                b.text(f"<|user|>\n{m['content']}")
            elif m["role"] == "assistant":
                b.text("<|assistant|>")
                b.answer(f"\n{m['content']}", m)
        if add_generation_prompt:
            b.text("<|assistant|>")
