"""Built-in chat templates. Factories are strings: template modules load only when selected."""

from __future__ import annotations

from swift_core.descriptors import TemplateDescriptor
from swift_core.hookspecs import hookimpl

_LIB = "swift_core.templates.library"

TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("chatml", f"{_LIB}.qwen:ChatMLTemplate", "ChatML as in Qwen1.5/Qwen2-Instruct (default system prompt)"),
    ("qwen2_5", f"{_LIB}.qwen:Qwen25Template", "Qwen2.5-Instruct: ChatML with tools"),
    ("qwen3", f"{_LIB}.qwen:Qwen3Template", "Qwen3: ChatML with tools and <think> reasoning"),
    ("qwen2_vl", f"{_LIB}.qwen:Qwen2VLTemplate", "Qwen2-VL / Qwen2.5-VL: ChatML with vision tokens"),
    ("llama2", f"{_LIB}.llama:Llama2Template", "Llama 2 chat: [INST] with <<SYS>>"),
    ("llama3", f"{_LIB}.llama:Llama3Template", "Llama 3 Instruct"),
    ("llama3_1", f"{_LIB}.llama:Llama31Template", "Llama 3.1/3.3 Instruct: dated system header, tools"),
    ("llama3_2", f"{_LIB}.llama:Llama32Template", "Llama 3.2 Instruct: as 3.1 with the current date"),
    ("mistral", f"{_LIB}.mistral:MistralTemplate", "Mistral/Mixtral Instruct: [INST] turns"),
    ("gemma", f"{_LIB}.gemma:GemmaTemplate", "Gemma 2: <start_of_turn>user/model, no system role"),
    ("gemma3", f"{_LIB}.gemma:Gemma3Template", "Gemma 3: system text in the first user turn"),
    ("phi3", f"{_LIB}.phi:Phi3Template", "Phi-3/3.5: <|user|> ... <|end|>"),
    ("phi4", f"{_LIB}.phi:Phi4Template", "Phi-4: <|im_start|>role<|im_sep|>"),
    ("glm4", f"{_LIB}.glm:GLM4Template", "GLM-4: [gMASK]<sop> <|user|>/<|assistant|>"),
    ("deepseek", f"{_LIB}.deepseek:DeepSeekTemplate", "DeepSeek LLM chat: User:/Assistant:"),
    ("deepseek_v3", f"{_LIB}.deepseek:DeepSeekV3Template", "DeepSeek-V2.5/V3: <｜User｜>/<｜Assistant｜>"),
    (
        "deepseek_r1",
        f"{_LIB}.deepseek:DeepSeekR1Template",
        "DeepSeek-R1 distills: <think> opened for generation",
    ),
    ("internlm2", f"{_LIB}.others:InternLM2Template", "InternLM2/2.5/3: <s> + ChatML"),
    ("yi", f"{_LIB}.others:YiTemplate", "Yi chat"),
    ("baichuan2", f"{_LIB}.others:Baichuan2Template", "Baichuan 2 chat: <reserved_106>/<reserved_107>"),
    ("minicpm", f"{_LIB}.others:MiniCPMTemplate", "MiniCPM-2B: <用户>/<AI>"),
    ("raw", f"{_LIB}.raw:RawTemplate", "No chat markup (pretraining, base models)"),
    (
        "jinja",
        "swift_core.templates.jinja_backend:JinjaTemplate",
        "The tokenizer's own chat_template, labels masked",
    ),
)


@hookimpl
def register_templates(register):
    for name, factory, description in TEMPLATES:
        register(TemplateDescriptor(name=name, factory=factory, description=description))
