"""`resolve_model`: local folders, hub ids, aliases, --model_type and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swift_core.builtin.model_families import FAMILIES
from swift_core.descriptors import ModelFamily
from swift_core.errors import SwiftError, UnknownNameError
from swift_core.models import ResolvedModel, resolve_model
from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy
from swift_core.registry import Registry

# Excerpts of the real chat templates (tokenizer_config.json) of each line of models.
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
QWEN2_5 = QWEN2.replace(
    "You are a helpful assistant.", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
)
DS_NEW = (  # DeepSeek-V2.5 / V3 / R1 and the R1 distills
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{'<\uff5cUser\uff5c>' + message['content']}}{% elif message['role'] == 'assistant' %}"
    "{{'<\uff5cAssistant\uff5c>' + message['content'] + '<\uff5cend\u2581of\u2581sentence\uff5c>'}}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{'<\uff5cAssistant\uff5c>'}}{% endif %}"
)
DS_R1 = DS_NEW.replace(
    "{% elif message['role'] == 'assistant' %}",
    "{% elif message['role'] == 'assistant' %}{% if '</think>' in content %}"
    "{% set content = content.split('</think>')[-1] %}{% endif %}",
).replace("{{'<\uff5cAssistant\uff5c>'}}{% endif %}", "{{'<\uff5cAssistant\uff5c><think>\\n'}}{% endif %}")
DS_OLD = (  # DeepSeek LLM, DeepSeek-V2-Chat: "User: ... Assistant:"
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ 'User: ' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}"
    "{{ 'Assistant: ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] "
    "+ '\\n<</SYS>>\\n\\n' %}{% endif %}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
LLAMA3_1 = (
    '{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}'
    '{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}{{- "Cutting Knowledge Date: December 2023\\n" }}'
    '{{- "Today Date: " + date_string + "\\n\\n" }}' + LLAMA3
)
LLAMA3_2 = (
    "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
    '{%- set date_string = strftime_now("%d %b %Y") %}{%- else %}{%- set date_string = "26 Jul 2024" %}'
    "{%- endif %}{%- endif %}" + LLAMA3_1
)
YI = (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% endif %}"
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
PHI4 = (
    "{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + "
    "message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'assistant') %}"
    "{{'<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}"
)

# What a downloaded folder of each family that shares its architecture carries.
FOLDER_HINTS: dict[str, dict] = {
    "qwen2": {"template": QWEN2},
    "qwen2_5": {"template": QWEN2_5},
    "deepseek_r1_distill_qwen": {"template": DS_R1},
    "llama2": {"template": LLAMA2, "config": {"vocab_size": 32000}},
    "llama3": {"template": LLAMA3, "config": {"vocab_size": 128256}},
    "llama3_1": {
        "template": LLAMA3_1,
        "config": {"vocab_size": 128256, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
    },
    "llama3_2": {
        "template": LLAMA3_2,
        "config": {"vocab_size": 128256, "rope_scaling": {"rope_type": "llama3", "factor": 32.0}},
    },
    "deepseek_r1_distill_llama": {
        "template": DS_R1,
        "config": {"vocab_size": 128256, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
    },
    "yi": {"template": YI, "config": {"vocab_size": 64000}},
    "deepseek": {"template": DS_OLD, "config": {"vocab_size": 102400}},
    "phi3": {"template": PHI3, "config": {"vocab_size": 32064}},
    "phi4": {"template": PHI4, "config": {"vocab_size": 100352}},
    "deepseek_v2": {"template": DS_OLD},
    "deepseek_v2_5": {"template": DS_NEW},
    "deepseek_v3": {"template": DS_NEW},
    "deepseek_r1": {"template": DS_R1},
}
DEFAULTS = {
    "Qwen2ForCausalLM": "qwen2_5",
    "LlamaForCausalLM": "llama3_1",
    "Phi3ForCausalLM": "phi3",
    "DeepseekV2ForCausalLM": "deepseek_v2",
    "DeepseekV3ForCausalLM": "deepseek_v3",
}


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    source = PluginSource(
        "model-families", "swift_core.builtin.model_families", "swift-core", "0.1.0", builtin=True
    )
    return PluginManager(Policy(), [source])


def write_model(
    folder: Path,
    architecture: str | None,
    model_type: str | None,
    *,
    config: dict | None = None,
    template: str | None = None,
    tokenizer_config: dict | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = dict(config or {})
    if architecture:
        data["architectures"] = [architecture]
    if model_type:
        data["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(data), encoding="utf-8")
    tok = dict(tokenizer_config or {})
    if template is not None:
        tok["chat_template"] = template
    if tok:
        (folder / "tokenizer_config.json").write_text(json.dumps(tok), encoding="utf-8")
    return folder


def family_folder(tmp_path: Path, family: ModelFamily, name: str = "model") -> Path:
    hints = FOLDER_HINTS.get(family.name, {})
    return write_model(
        tmp_path / name,
        family.architectures[0],
        family.model_types[0],
        config=hints.get("config"),
        template=hints.get("template"),
    )


# --- local folders ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_each_family_resolves_from_a_local_folder(tmp_path, manager, family):
    folder = family_folder(tmp_path, family)
    resolved = resolve_model(str(folder), manager=manager)
    assert isinstance(resolved, ResolvedModel)
    assert resolved.family.name == family.name, resolved.how
    assert resolved.is_local and resolved.model == str(folder)
    assert resolved.hub_id is None
    assert family.architectures[0] in resolved.how


def test_every_shared_architecture_family_has_a_folder_hint_here(manager):
    by_arch: dict[str, list[str]] = {}
    for family in manager.registry("model_families"):
        for arch in family.architectures:
            by_arch.setdefault(arch, []).append(family.name)
    shared = {name for names in by_arch.values() if len(names) > 1 for name in names}
    assert shared == set(FOLDER_HINTS)
    assert {arch for arch, names in by_arch.items() if len(names) > 1} == set(DEFAULTS)


@pytest.mark.parametrize(("architecture", "expected"), sorted(DEFAULTS.items()))
def test_shared_architecture_without_hints_gets_the_default(tmp_path, manager, architecture, expected):
    folder = write_model(tmp_path / "checkpoint-100", architecture, None)
    first = resolve_model(str(folder), manager=manager)
    assert first.family.name == expected
    assert "default" in first.how and "--model_type" in first.how
    assert resolve_model(str(folder), manager=manager) == first  # deterministic


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"vocab_size": 32000}, "llama2"),
        ({"vocab_size": 64000}, "yi"),
        ({"vocab_size": 102400}, "deepseek"),
        ({"vocab_size": 128256, "rope_scaling": None}, "llama3"),
        ({"vocab_size": 128256, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "llama3_1"),
        ({"vocab_size": 128256, "rope_scaling": {"rope_type": "llama3", "factor": 32.0}}, "llama3_2"),
        # transformers 5 writes rope_parameters instead of rope_scaling
        ({"vocab_size": 128256, "rope_parameters": {"rope_type": "llama3", "factor": 32.0}}, "llama3_2"),
    ],
)
def test_llama_base_models_are_told_apart_by_config(tmp_path, manager, config, expected):
    folder = write_model(tmp_path / "out", "LlamaForCausalLM", "llama", config=config)
    assert resolve_model(str(folder), manager=manager).family.name == expected


@pytest.mark.parametrize(
    ("folder_name", "expected"),
    [
        ("my-qwen2-finetune", "qwen2"),
        ("qwen1.5-sft", "qwen2"),
        ("qwen2.5-coder-sft", "qwen2_5"),
        ("DeepSeek-R1-Distill-Qwen-7B-sft", "deepseek_r1_distill_qwen"),
    ],
)
def test_folder_name_decides_when_nothing_else_does(tmp_path, manager, folder_name, expected):
    folder = write_model(tmp_path / "runs" / folder_name, "Qwen2ForCausalLM", "qwen2")
    resolved = resolve_model(str(folder), manager=manager)
    assert resolved.family.name == expected
    assert folder_name in resolved.how


def test_chat_template_beats_folder_name(tmp_path, manager):
    folder = write_model(tmp_path / "qwen2-finetune", "Qwen2ForCausalLM", "qwen2", template=QWEN2_5)
    resolved = resolve_model(str(folder), manager=manager)
    assert resolved.family.name == "qwen2_5"
    assert "chat template" in resolved.how


def test_start_header_template_means_llama3(tmp_path, manager):
    folder = write_model(tmp_path / "m", "LlamaForCausalLM", "llama", template=LLAMA3)
    assert resolve_model(str(folder), manager=manager).family.name == "llama3"


def test_chat_template_jinja_file_and_template_lists_are_read(tmp_path, manager):
    jinja = write_model(tmp_path / "a", "LlamaForCausalLM", "llama")
    (jinja / "chat_template.jinja").write_text(LLAMA3_2, encoding="utf-8")
    assert resolve_model(str(jinja), manager=manager).family.name == "llama3_2"
    listed = write_model(
        tmp_path / "b",
        "Phi3ForCausalLM",
        "phi3",
        tokenizer_config={"chat_template": [{"name": "default", "template": PHI4}]},
    )
    assert resolve_model(str(listed), manager=manager).family.name == "phi4"


def test_name_or_path_naming_a_known_id_wins(tmp_path, manager):
    folder = write_model(
        tmp_path / "checkpoint-50",
        "Qwen2ForCausalLM",
        "qwen2",
        config={"_name_or_path": "Qwen/Qwen2-7B-Instruct"},
        template=QWEN2_5,  # even against the template: the id is the strongest evidence
    )
    resolved = resolve_model(str(folder), manager=manager)
    assert resolved.family.name == "qwen2"
    assert resolved.hub_id == "Qwen/Qwen2-7B-Instruct"
    assert "_name_or_path" in resolved.how


def test_hugging_face_cache_folder(tmp_path, manager):
    snapshot = (
        tmp_path / "hub" / "models--deepseek-ai--DeepSeek-R1-Distill-Llama-8B" / "snapshots" / "0123abc"
    )
    write_model(snapshot, "LlamaForCausalLM", "llama", config=FOLDER_HINTS["llama3_1"]["config"])
    resolved = resolve_model(str(snapshot), manager=manager)
    assert resolved.family.name == "deepseek_r1_distill_llama"
    assert resolved.hub_id == "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"
    assert resolved.is_local


def test_modelscope_cache_folder(tmp_path, manager):
    folder = write_model(tmp_path / "models" / "Qwen" / "Qwen2___5-7B-Instruct", "Qwen2ForCausalLM", "qwen2")
    resolved = resolve_model(str(folder), manager=manager)
    assert resolved.family.name == "qwen2_5"
    assert resolved.hub_id == "Qwen/Qwen2.5-7B-Instruct"


def test_model_type_is_used_when_the_architecture_is_unknown(tmp_path, manager):
    folder = write_model(tmp_path / "rm", "Qwen2ForSequenceClassification", "qwen2", template=QWEN2)
    resolved = resolve_model(str(folder), manager=manager)
    assert resolved.family.name == "qwen2"
    assert "model_type 'qwen2'" in resolved.how


def test_unknown_architecture_is_a_clear_error(tmp_path, manager):
    folder = write_model(tmp_path / "odd", "FancyNewForCausalLM", "fancy")
    with pytest.raises(SwiftError) as err:
        resolve_model(str(folder), manager=manager)
    message = str(err.value)
    assert str(folder) in message and "FancyNewForCausalLM" in message
    assert "--model_type" in message and "qwen2_5" in message


def test_folder_without_config_json_is_a_clear_error(tmp_path, manager):
    folder = tmp_path / "weights-only"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(SwiftError) as err:
        resolve_model(str(folder), manager=manager)
    assert str(folder) in str(err.value) and "config.json" in str(err.value)
    assert not isinstance(err.value, UnknownNameError)


def test_adapter_folder_says_so(tmp_path, manager):
    folder = tmp_path / "lora"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "Qwen/Qwen2.5-0.5B-Instruct"}), encoding="utf-8"
    )
    with pytest.raises(SwiftError, match="LoRA adapter for Qwen/Qwen2.5-0.5B-Instruct"):
        resolve_model(str(folder), manager=manager)


def test_invalid_config_json_names_file_and_line(tmp_path, manager):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text('{\n  "model_type": "qwen2",\n  oops\n}', encoding="utf-8")
    with pytest.raises(SwiftError, match=r"config\.json, line 3: invalid JSON"):
        resolve_model(str(folder), manager=manager)


def test_file_and_missing_paths(tmp_path, manager):
    file = tmp_path / "model.bin"
    file.write_bytes(b"")
    with pytest.raises(SwiftError, match="is a file"):
        resolve_model(str(file), manager=manager)
    with pytest.raises(SwiftError, match="no such folder"):
        resolve_model(str(tmp_path / "missing" / "model"), manager=manager)
    with pytest.raises(SwiftError, match="no such folder"):
        resolve_model("./not-here", manager=manager)


def test_tie_between_plugins_is_broken_by_priority_then_name(tmp_path):
    """Two families with the same architecture and no hint never fail with 'multiple types'."""

    class Manager:
        def __init__(self, *families):
            self._registry = Registry("model_families", ModelFamily)
            for family in families:
                self._registry.add(family)

        def registry(self, kind):
            assert kind == "model_families"
            return self._registry

    common = {"architectures": ("ToyForCausalLM",), "model_types": ("toy",), "template": "raw"}
    folder = write_model(tmp_path / "toy", "ToyForCausalLM", "toy")
    tied = Manager(ModelFamily(name="zeta", **common), ModelFamily(name="alpha", **common))
    assert resolve_model(str(folder), manager=tied).family.name == "alpha"
    ranked = Manager(ModelFamily(name="zeta", priority=1, **common), ModelFamily(name="alpha", **common))
    assert resolve_model(str(folder), manager=ranked).family.name == "zeta"


# --- hub ids and aliases ------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_each_family_resolves_from_hub_ids(manager, family):
    for hub_id in family.hf_ids[:3] + family.ms_ids[:3]:
        resolved = resolve_model(hub_id, manager=manager)
        assert resolved.family.name == family.name, (hub_id, resolved.how)
        assert resolved.model == hub_id and resolved.hub_id == hub_id
        assert not resolved.is_local


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_each_family_resolves_from_aliases(manager, family):
    for alias, target in family.model_aliases[:3]:
        resolved = resolve_model(alias, manager=manager)
        assert resolved.family.name == family.name
        assert resolved.model == target and resolved.hub_id == target
        assert alias in resolved.how


@pytest.mark.parametrize(
    ("text", "family", "hub_id"),
    [
        ("qwen/qwen2.5-7b-instruct", "qwen2_5", "Qwen/Qwen2.5-7B-Instruct"),
        ("Qwen2.5-7B-Instruct", "qwen2_5", "Qwen/Qwen2.5-7B-Instruct"),
        ("llama3-8b-instruct", "llama3", "meta-llama/Meta-Llama-3-8B-Instruct"),
        ("llama3_1-8b-instruct", "llama3_1", "meta-llama/Meta-Llama-3.1-8B-Instruct"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3_1", "meta-llama/Meta-Llama-3.1-8B-Instruct"),
        ("LLM-Research/Meta-Llama-3-8B-Instruct", "llama3", "LLM-Research/Meta-Llama-3-8B-Instruct"),
        (
            "deepseek-r1-distill-qwen-7b",
            "deepseek_r1_distill_qwen",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        ),
        ("  Qwen/Qwen3-8B  ", "qwen3", "Qwen/Qwen3-8B"),
    ],
)
def test_spellings_users_type(manager, text, family, hub_id):
    resolved = resolve_model(text, manager=manager)
    assert (resolved.family.name, resolved.hub_id) == (family, hub_id)


def test_default_manager_is_the_process_one():
    resolved = resolve_model("Qwen/Qwen2.5-7B-Instruct")
    assert resolved.family.name == "qwen2_5"


# --- --model_type -------------------------------------------------------------------------------


def test_model_type_overrides_a_local_folder(tmp_path, manager):
    folder = family_folder(tmp_path, next(f for f in FAMILIES if f.name == "qwen2_5"))
    resolved = resolve_model(str(folder), model_type="llama3", manager=manager)
    assert resolved.family.name == "llama3" and resolved.is_local
    assert resolved.how == "--model_type llama3"


def test_model_type_overrides_a_known_id_and_allows_unknown_ones(manager):
    known = resolve_model("Qwen/Qwen2.5-7B-Instruct", model_type="qwen2", manager=manager)
    assert known.family.name == "qwen2" and "qwen2_5" in known.how
    unknown = resolve_model("my-org/my-private-model", model_type="qwen3", manager=manager)
    assert (unknown.family.name, unknown.model, unknown.hub_id) == (
        "qwen3",
        "my-org/my-private-model",
        unknown.model,
    )


def test_model_type_accepts_family_aliases(manager):
    assert resolve_model("my-org/x", model_type="qwen2.5", manager=manager).family.name == "qwen2_5"
    assert resolve_model("my-org/x", model_type="Llama3-2", manager=manager).family.name == "llama3_2"


def test_unknown_model_type_lists_families(manager):
    with pytest.raises(UnknownNameError) as err:
        resolve_model("Qwen/Qwen2.5-7B-Instruct", model_type="qwen2_55", manager=manager)
    message = str(err.value)
    assert "--model_type" in message and "Did you mean 'qwen2_5'" in message and "llama3_1" in message


# --- unknown names ------------------------------------------------------------------------------


def test_unknown_hub_id_asks_for_model_type(manager):
    with pytest.raises(SwiftError) as err:
        resolve_model("someone/some-model", manager=manager)
    message = str(err.value)
    assert "--model_type" in message and "qwen2_5" in message and "deepseek_r1" in message
    assert not isinstance(err.value, UnknownNameError)


def test_misspelt_hub_id_suggests_the_known_one(manager):
    with pytest.raises(SwiftError, match="Did you mean 'Qwen/Qwen2.5-7B-Instruct'"):
        resolve_model("Qwen/Qwen2.5-7B-Instrct", manager=manager)


def test_unknown_name_suggests_nearest_aliases(manager):
    with pytest.raises(UnknownNameError) as err:
        resolve_model("qwen2_5-7b-instrct", manager=manager)
    assert "Did you mean 'qwen2_5-7b-instruct'" in str(err.value)
    with pytest.raises(UnknownNameError, match="'llama3-8b-instruct'"):
        resolve_model("lama3-8b-instruct", manager=manager)


def test_family_name_given_as_model_says_to_use_model_type(manager):
    with pytest.raises(UnknownNameError, match="is a model family: pass it as --model_type"):
        resolve_model("qwen2_5", manager=manager)


def test_empty_model_is_an_error(manager):
    with pytest.raises(SwiftError, match="--model is empty"):
        resolve_model("  ", manager=manager)


def test_the_seed_articles_short_names_resolve():
    from swift_core.models.resolve import resolve_model

    resolved = resolve_model("qwen-7b")
    assert resolved.family.name == "qwen2_5" and resolved.hub_id == "Qwen/Qwen2.5-7B-Instruct"
