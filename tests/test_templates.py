"""Every built-in template renders byte-equal to its family's official jinja template, and
labels cover exactly the assistant turns.

The official jinja texts live in swift_core/templates/jinja/ (see SOURCES.md there); they are
rendered with transformers' own `render_jinja_template`, the function behind
`apply_chat_template`.
"""

from __future__ import annotations

import copy

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from swift_core.datasets.encode import IGNORE_INDEX, encode_rows
from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy
from swift_core.templates.registry import get_template, official_jinja

MANAGER = PluginManager(
    Policy(), [PluginSource("templates", "swift_core.builtin.templates", "swift-core", "0.1.0", True)]
)
NAMES = MANAGER.registry("templates").names()
# Templates with turn markers; raw (no markup) and jinja (the tokenizer's own) are tested on their own.
CHAT_NAMES = [n for n in NAMES if n not in ("raw", "jinja")]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

CONVERSATIONS: dict[str, dict] = {
    "single": {
        "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "It is 4."},
        ]
    },
    "system_multi": {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another one?"},
            {"role": "assistant", "content": "Green."},
        ]
    },
    "multi_no_system": {
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi! How can I help?"},
            {"role": "user", "content": "Reverse 'abc'."},
            {"role": "assistant", "content": "cba"},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": "You're welcome."},
        ]
    },
    "unicode_whitespace": {
        "messages": [
            {"role": "user", "content": "  你好，世界 🌍\nline two  "},
            {"role": "assistant", "content": " Ça va très bien.\n\n- a\n- b "},
        ]
    },
    "tools": {
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                ],
            },
            {"role": "tool", "content": '{"temp": 21}'},
            {"role": "assistant", "content": "It is 21 degrees in Paris."},
        ],
    },
}


def test_every_chat_template_has_its_official_jinja():
    missing = [n for n in CHAT_NAMES if official_jinja(_template(n)) is None]
    assert not missing, f"no official jinja text for {missing}"


def _template(name):
    return get_template(name, MANAGER)


def _applicable(template, conv):
    messages = conv["messages"]
    if conv.get("tools") and not template.supports_tools:
        return False
    if any(m["role"] == "system" for m in messages) and not template.supports_system:
        return False
    return not any(m["role"] == "tool" or m.get("tool_calls") for m in messages) or template.supports_tools


def _official(jinja, template, messages, tools=None, add_generation_prompt=False, **options):
    rendered, _ = render_jinja_template(
        conversations=[copy.deepcopy(messages)],
        tools=tools,
        chat_template=jinja,
        add_generation_prompt=add_generation_prompt,
        bos_token=template.bos_token or "",
        eos_token=template.eos_token,
        **options,
    )
    return rendered[0]


CASES = [(n, c) for n in NAMES for c in CONVERSATIONS]


@pytest.mark.parametrize("name, conv_name", CASES)
def test_render_is_byte_equal_to_the_official_jinja(name, conv_name):
    template = _template(name)
    jinja = official_jinja(template)
    if jinja is None:
        pytest.skip(f"{name}: no official jinja text (see swift_core/templates/jinja/SOURCES.md)")
    conv = CONVERSATIONS[conv_name]
    if not _applicable(template, conv):
        pytest.skip(f"{name} does not support {conv_name}")
    messages, tools = conv["messages"], conv.get("tools")
    ours = template.render_text(messages, tools=tools)
    assert ours == _official(jinja, template, messages, tools)
    # the generation prompt: everything up to the last assistant turn, then the assistant header
    prompt = messages[:-1]
    if template.generation_prompt_matches_jinja:
        ours = template.render_text(prompt, tools=tools, add_generation_prompt=True)
        assert ours == _official(jinja, template, prompt, tools, add_generation_prompt=True)


@pytest.mark.parametrize("name", CHAT_NAMES)
def test_labels_cover_exactly_the_assistant_turns(name, tiny_tokenizers):
    template = _template(name)
    tokenizer = tiny_tokenizers(template)
    conv = CONVERSATIONS["multi_no_system"]
    encoded = encode_rows(template, tokenizer, [conv])[0]
    trained = tokenizer.decode(
        [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX]
    )
    for m in conv["messages"]:
        if m["role"] == "assistant":
            assert m["content"].strip() in trained
        else:
            assert m["content"] not in trained
    assert template.eos_token in trained or any(s in trained for s in template.stop)
    # a turn with "loss": false is not trained on
    messages = copy.deepcopy(conv["messages"])
    messages[1]["loss"] = False
    encoded = encode_rows(template, tokenizer, [{"messages": messages}])[0]
    trained = tokenizer.decode(
        [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX]
    )
    assert "How can I help" not in trained and "cba" in trained


@pytest.mark.parametrize("name", CHAT_NAMES)
def test_segments_join_to_the_rendered_text_and_ids_match_full_tokenization(name, tiny_tokenizers):
    template = _template(name)
    tokenizer = tiny_tokenizers(template)
    messages = CONVERSATIONS["single"]["messages"]
    segments = template.render(messages, for_training=True)
    text = "".join(s.text for s in segments)
    encoded = encode_rows(template, tokenizer, [{"messages": messages}])[0]
    assert tokenizer.decode(encoded.input_ids) == text


QWEN2_JINJA = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_jinja_backend_masks_like_the_builtin_template(tiny_tokenizers):
    chatml = _template("chatml")
    tokenizer = tiny_tokenizers(chatml)
    tokenizer.chat_template = QWEN2_JINJA
    jinja = _template("jinja").bind(tokenizer)
    for conv in ("single", "system_multi", "multi_no_system"):
        messages = CONVERSATIONS[conv]["messages"]
        assert jinja.render_text(messages) == chatml.render_text(messages)
        ours = [(s.text.rstrip("\n"), s.trainable) for s in jinja.render(messages) if s.trainable]
        builtin = [(s.text.rstrip("\n"), s.trainable) for s in chatml.render(messages) if s.trainable]
        assert ours == builtin
    assert jinja.render_text(messages[:-1], add_generation_prompt=True).endswith("<|im_start|>assistant\n")


def test_jinja_backend_refuses_templates_that_rewrite_history(tiny_tokenizers):
    from swift_core.errors import SwiftError

    tokenizer = tiny_tokenizers(_template("chatml"))
    tokenizer.chat_template = (
        "{% for m in messages %}{% if loop.last %}{{ m.content }}{% else %}X{% endif %}{% endfor %}"
    )
    with pytest.raises(SwiftError, match="renders earlier turns differently"):
        _template("jinja").bind(tokenizer).render(CONVERSATIONS["multi_no_system"]["messages"])


def test_raw_template_is_plain_concatenation():
    raw = _template("raw")
    segments = raw.render(CONVERSATIONS["single"]["messages"])
    assert [(s.text, s.trainable) for s in segments] == [("What is 2+2?", False), ("It is 4.", True)]


THINKING = [
    {"role": "user", "content": "What is 3*3?"},
    {"role": "assistant", "content": "<think>\nThree threes.\n</think>\n\nNine."},
    {"role": "user", "content": "And 4*4?"},
    {"role": "assistant", "content": "<think>\nFour fours.\n</think>\n\nSixteen."},
]


@pytest.mark.parametrize("name", ["qwen3", "deepseek_r1"])
def test_reasoning_templates_match_official_on_think_blocks(name):
    template = _template(name)
    jinja = official_jinja(template)
    assert template.render_text(THINKING) == _official(jinja, template, THINKING)
    prompt = THINKING[:-1]
    assert template.render_text(prompt, add_generation_prompt=True) == _official(
        jinja, template, prompt, add_generation_prompt=True
    )


def test_qwen3_thinking_off_and_history_without_old_reasoning():
    template = _template("qwen3")
    jinja = official_jinja(template)
    prompt = THINKING[:-1]
    ours = template.render_text(prompt, add_generation_prompt=True, enable_thinking=False)
    assert ours == _official(jinja, template, prompt, add_generation_prompt=True, enable_thinking=False)
    assert ours.endswith("<think>\n\n</think>\n\n") and "Three threes" not in ours


def test_qwen2_vl_image_placeholders_match_official_content_lists():
    template = _template("qwen2_vl")
    ours = template.render_text(
        [{"role": "user", "content": "<image>What is this?"}], add_generation_prompt=True
    )
    official = _official(
        official_jinja(template),
        template,
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}],
        add_generation_prompt=True,
    )
    assert ours == official


def test_llama3_2_date_option_matches_official():
    template = _template("llama3_2")
    messages = CONVERSATIONS["single"]["messages"]
    ours = template.render_text(messages, date_string="01 Jan 2025")
    assert ours == _official(official_jinja(template), template, messages, date_string="01 Jan 2025")


@pytest.mark.parametrize("name", ["glm4", "baichuan2", "minicpm"])
def test_formats_without_an_end_token_learn_to_stop(name, tiny_tokenizers):
    """Their official text has no end marker after an answer; training appends the stop token."""
    template = _template(name)
    tokenizer = tiny_tokenizers(template)
    encoded = encode_rows(template, tokenizer, [CONVERSATIONS["single"]])[0]
    last_trained = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX][-1]
    assert tokenizer.convert_ids_to_tokens(last_trained) == template.train_stop
    assert not template.render_text(CONVERSATIONS["single"]["messages"]).endswith(template.train_stop)
