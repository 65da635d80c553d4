"""Built-in chat templates. Factories are strings: template modules load only when selected."""

from __future__ import annotations

from swift_core.descriptors import TemplateDescriptor
from swift_core.hookspecs import hookimpl

_LIB = "swift_core.templates.library"

TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("chatml", f"{_LIB}.qwen:ChatMLTemplate", "ChatML as in Qwen1.5/Qwen2-Instruct (default system prompt)"),
    ("qwen2_5", f"{_LIB}.qwen:Qwen25Template", "Qwen2.5-Instruct: ChatML with tools"),
    ("llama2", f"{_LIB}.llama:Llama2Template", "Llama 2 chat: [INST] with <<SYS>>"),
    ("llama3", f"{_LIB}.llama:Llama3Template", "Llama 3 Instruct"),
    ("llama3_1", f"{_LIB}.llama:Llama31Template", "Llama 3.1/3.3 Instruct: dated system header, tools"),
    ("llama3_2", f"{_LIB}.llama:Llama32Template", "Llama 3.2 Instruct: as 3.1 with the current date"),
    ("raw", f"{_LIB}.raw:RawTemplate", "No chat markup (pretraining, base models)"),
    ("jinja", "swift_core.templates.jinja_backend:JinjaTemplate", "The tokenizer's own chat_template, labels masked"),
)


@hookimpl
def register_templates(register):
    for name, factory, description in TEMPLATES:
        register(TemplateDescriptor(name=name, factory=factory, description=description))
