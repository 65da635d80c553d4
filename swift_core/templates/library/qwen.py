"""ChatML and the Qwen formats (Qwen2 / Qwen2.5 / Qwen3 / Qwen2-VL)."""

from __future__ import annotations

from typing import Any

from swift_core.templates.base import Builder, ChatTemplate, Message, tojson

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
QWEN_TOKENS = ("<|endoftext|>", IM_START, IM_END)


def _turn(b: Builder, message: Message, content: str | None = None) -> None:
    """`<|im_start|>role\\ncontent<|im_end|>\\n`, the assistant's content and end trainable."""
    content = message["content"] if content is None else content
    if message["role"] == "assistant":
        b.text(f"{IM_START}assistant\n")
        b.answer(content + IM_END, message)
        b.text("\n")
    else:
        b.text(f"{IM_START}{message['role']}\n{content}{IM_END}\n")


class ChatMLTemplate(ChatTemplate):
    """Qwen2-Instruct's template: ChatML with a default system prompt."""

    name = "chatml"
    description = "ChatML (Qwen1.5/Qwen2-Instruct): default system 'You are a helpful assistant.'"
    eos_token = IM_END
    pad_token = "<|endoftext|>"
    special_tokens = QWEN_TOKENS
    stop = (IM_END, "<|endoftext|>")
    default_system: str | None = "You are a helpful assistant."
    jinja_name = "chatml"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        if messages[0]["role"] != "system" and self.default_system is not None:
            b.text(f"{IM_START}system\n{self.default_system}{IM_END}\n")
        for m in messages:
            _turn(b, m)
        if add_generation_prompt:
            b.text(f"{IM_START}assistant\n")


def _tool_call_text(tool_call: dict[str, Any]) -> str:
    call = tool_call.get("function", tool_call)
    return (
        '\n<tool_call>\n{"name": "'
        + str(call["name"])
        + '", "arguments": '
        + tojson(call["arguments"])
        + "}\n</tool_call>"
    )


_TOOLS_HEAD = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call><|im_end|>\n"
)


class Qwen25Template(ChatTemplate):
    """Qwen2.5-Instruct: ChatML, Qwen's default system prompt, Hermes-style tool calls."""

    name = "qwen2_5"
    description = "Qwen2.5-Instruct: ChatML with tools and Qwen's default system prompt"
    eos_token = IM_END
    pad_token = "<|endoftext|>"
    special_tokens = (*QWEN_TOKENS, "<tool_call>", "</tool_call>")
    stop = (IM_END, "<|endoftext|>")
    default_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    supports_tools = True
    jinja_name = "qwen2_5"

    def system_block(self, b: Builder, messages: list[Message], tools: list[Any] | None) -> None:
        first_is_system = messages[0]["role"] == "system"
        if tools:
            b.text(f"{IM_START}system\n")
            if first_is_system:
                b.text(messages[0]["content"])
            elif self.default_system is not None:
                b.text(self.default_system)
            b.text(_TOOLS_HEAD + "".join("\n" + tojson(t) for t in tools) + _TOOLS_TAIL)
        elif first_is_system:
            b.text(f"{IM_START}system\n{messages[0]['content']}{IM_END}\n")
        elif self.default_system is not None:
            b.text(f"{IM_START}system\n{self.default_system}{IM_END}\n")

    def assistant_with_tools(self, b: Builder, m: Message, content: str) -> None:
        b.text(f"{IM_START}assistant")
        body = ("\n" + content) if content else ""
        body += "".join(_tool_call_text(tc) for tc in m["tool_calls"])
        b.answer(body + IM_END, m)
        b.text("\n")

    def tool_response(self, b: Builder, messages: list[Message], i: int) -> None:
        if i == 0 or messages[i - 1]["role"] != "tool":
            b.text(f"{IM_START}user")
        b.text("\n<tool_response>\n" + messages[i]["content"] + "\n</tool_response>")
        if i == len(messages) - 1 or messages[i + 1]["role"] != "tool":
            b.text(f"{IM_END}\n")

    def build(self, b, messages, tools, add_generation_prompt, **options):
        self.system_block(b, messages, tools)
        for i, m in enumerate(messages):
            if (
                m["role"] == "user"
                or (m["role"] == "system" and i > 0)
                or (m["role"] == "assistant" and not m.get("tool_calls"))
            ):
                _turn(b, m)
            elif m["role"] == "assistant":
                self.assistant_with_tools(b, m, m.get("content") or "")
            elif m["role"] == "tool":
                self.tool_response(b, messages, i)
        if add_generation_prompt:
            b.text(f"{IM_START}assistant\n")


def _split_reasoning(content: str) -> tuple[str, str]:
    """(reasoning, answer) of a Qwen3 assistant message that may hold <think>...</think>."""
    if "</think>" not in content:
        return "", content
    answer = content.split("</think>")[-1].lstrip("\n")
    reasoning = content.split("</think>")[0].rstrip("\n").split("<think>")[-1].lstrip("\n")
    return reasoning, answer


def _is_tool_response(m: Message) -> bool:
    c = m["content"]
    return c.startswith("<tool_response>") and c.endswith("</tool_response>")


class Qwen3Template(Qwen25Template):
    """Qwen3: thinking (<think>) kept only after the last user query; `enable_thinking=False`
    pre-fills an empty think block in the generation prompt."""

    name = "qwen3"
    description = "Qwen3: ChatML with tools and <think> reasoning"
    special_tokens = (
        *Qwen25Template.special_tokens,
        "<think>",
        "</think>",
        "<tool_response>",
        "</tool_response>",
    )
    default_system = None
    jinja_name = "qwen3"

    def system_block(self, b: Builder, messages: list[Message], tools: list[Any] | None) -> None:
        if tools:
            b.text(f"{IM_START}system\n")
            if messages[0]["role"] == "system":
                b.text(messages[0]["content"] + "\n\n")
            b.text(_TOOLS_HEAD[2:] + "".join("\n" + tojson(t) for t in tools) + _TOOLS_TAIL)
        elif messages[0]["role"] == "system":
            b.text(f"{IM_START}system\n{messages[0]['content']}{IM_END}\n")

    def build(self, b, messages, tools, add_generation_prompt, enable_thinking: bool = True, **options):
        self.system_block(b, messages, tools)
        last_query = len(messages) - 1
        for i in range(len(messages) - 1, -1, -1):
            if messages[i]["role"] == "user" and not _is_tool_response(messages[i]):
                last_query = i
                break
        for i, m in enumerate(messages):
            if m["role"] == "user" or (m["role"] == "system" and i > 0):
                _turn(b, m)
            elif m["role"] == "assistant":
                reasoning, content = _split_reasoning(m["content"])
                b.text(f"{IM_START}assistant\n")
                if i > last_query and (i == len(messages) - 1 or reasoning):
                    body = "<think>\n" + reasoning.strip("\n") + "\n</think>\n\n" + content.lstrip("\n")
                else:
                    body = content
                for k, tc in enumerate(m.get("tool_calls") or []):
                    call = tc.get("function", tc)
                    args = (
                        call["arguments"] if isinstance(call["arguments"], str) else tojson(call["arguments"])
                    )
                    sep = "\n" if (k == 0 and content) or k > 0 else ""
                    body += (
                        sep
                        + '<tool_call>\n{"name": "'
                        + str(call["name"])
                        + '", "arguments": '
                        + args
                        + "}\n</tool_call>"
                    )
                b.answer(body + IM_END, m)
                b.text("\n")
            elif m["role"] == "tool":
                self.tool_response(b, messages, i)
        if add_generation_prompt:
            b.text(f"{IM_START}assistant\n")
            if enable_thinking is False:
                b.text("<think>\n\n</think>\n\n")


VISION = "<|vision_start|><|image_pad|><|vision_end|>"


class Qwen2VLTemplate(ChatMLTemplate):
    """Qwen2-VL / Qwen2.5-VL: ChatML; each `<image>` placeholder becomes the vision tokens."""

    name = "qwen2_vl"
    description = "Qwen2-VL / Qwen2.5-VL: ChatML with <|vision_start|><|image_pad|><|vision_end|>"
    special_tokens = (*QWEN_TOKENS, "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
    jinja_name = "qwen2_vl"

    def build(self, b, messages, tools, add_generation_prompt, **options):
        if messages[0]["role"] != "system":
            b.text(f"{IM_START}system\n{self.default_system}{IM_END}\n")
        for m in messages:
            _turn(b, m, m["content"].replace("<image>", VISION))
        if add_generation_prompt:
            b.text(f"{IM_START}assistant\n")
