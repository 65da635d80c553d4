"""The built-in model families: real-looking, unique ids, complete descriptors, light module."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict

import pytest
from helpers import REPO
from packaging.version import Version

from swift_core.builtin.model_families import FAMILIES
from swift_core.descriptors import ModelFamily
from swift_core.plugins import PluginManager, PluginSource
from swift_core.policy import Policy

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Families the brief asks for, by the model line they cover.
EXPECTED_FAMILIES = {
    "qwen2",  # Qwen1.5, Qwen2
    "qwen2_5",
    "qwen2_moe",  # Qwen1.5-MoE, Qwen2-MoE
    "qwen3",
    "qwen3_moe",
    "qwen2_vl",
    "qwen2_5_vl",
    "llama2",
    "llama3",
    "llama3_1",  # and 3.3
    "llama3_2",
    "mistral",
    "mixtral",
    "gemma2",
    "gemma3_text",
    "gemma3_vision",
    "phi3",  # Phi-3, 3.5, 4-mini
    "phi4",
    "internlm2",  # InternLM2, 2.5
    "internlm3",
    "chatglm4",
    "glm4",
    "deepseek",
    "deepseek_v2",
    "deepseek_v2_5",
    "deepseek_v3",
    "deepseek_r1",
    "deepseek_r1_distill_qwen",
    "deepseek_r1_distill_llama",
    "yi",
    "baichuan2",
    "minicpm",
}


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    source = PluginSource(
        "model-families", "swift_core.builtin.model_families", "swift-core", "0.1.0", builtin=True
    )
    return PluginManager(Policy(), [source])


@pytest.fixture(scope="module")
def families(manager) -> list[ModelFamily]:
    return list(manager.registry("model_families"))


def test_plugin_loads_and_registers_every_family(manager, families):
    assert manager.warnings == []
    info = manager.plugins["model-families"]
    assert info.status == "loaded", info.reason
    assert sorted(f.name for f in families) == sorted(f.name for f in FAMILIES)
    assert {f.name for f in families} >= EXPECTED_FAMILIES
    assert all(f.plugin == "model-families" and f.distribution == "swift-core" for f in families)


def test_at_least_150_hugging_face_ids(families):
    assert sum(len(f.hf_ids) for f in families) >= 150


def test_every_id_looks_like_org_slash_name(families):
    for family in families:
        for hub_id in family.hf_ids + family.ms_ids:
            assert HUB_ID.match(hub_id), (family.name, hub_id)


def test_ids_are_unique_across_families(families):
    owners: dict[str, set[str]] = defaultdict(set)
    for family in families:
        assert len(set(family.hf_ids)) == len(family.hf_ids), family.name
        assert len(set(family.ms_ids)) == len(family.ms_ids), family.name
        for hub_id in family.hf_ids + family.ms_ids:
            owners[hub_id.lower()].add(family.name)
    shared = {hub_id: names for hub_id, names in owners.items() if len(names) > 1}
    assert shared == {}


def test_known_id_pairs(families):
    by_name = {f.name: f for f in families}
    assert "Qwen/Qwen2.5-7B-Instruct" in by_name["qwen2_5"].hf_ids
    assert "Qwen/Qwen2.5-7B-Instruct" in by_name["qwen2_5"].ms_ids
    assert "meta-llama/Meta-Llama-3-8B-Instruct" in by_name["llama3"].hf_ids
    assert "LLM-Research/Meta-Llama-3-8B-Instruct" in by_name["llama3"].ms_ids
    assert "meta-llama/Llama-3.3-70B-Instruct" in by_name["llama3_1"].hf_ids
    assert "Shanghai_AI_Laboratory/internlm2_5-7b-chat" in by_name["internlm2"].ms_ids
    assert "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B" in by_name["deepseek_r1_distill_qwen"].hf_ids
    assert "01ai/Yi-1.5-9B-Chat" in by_name["yi"].ms_ids


def test_every_family_names_a_registered_template(families):
    """Checked against the templates plugin itself, so a typo in a family fails here."""
    manager = PluginManager(
        Policy(), [PluginSource("templates", "swift_core.builtin.templates", "swift-core", "0.1.0", True)]
    )
    registered = set(manager.registry("templates").names())
    for family in families:
        assert family.template in registered, (family.name, family.template)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_descriptor_is_complete(family):
    assert family.description
    assert family.architectures and all(family.architectures)
    assert family.model_types and all(family.model_types)
    assert family.hf_ids
    assert family.lora_target_modules
    assert set(family.lora_target_modules) <= set(family.all_linear_modules)
    assert family.modality in {"text", "vision"}
    Version(family.min_transformers)  # parses
    for pattern in family.name_hints:
        re.compile(pattern)
    for key, _ in family.config_hints:
        assert key and " " not in key


def test_vision_families(families):
    vision = {f.name for f in families if f.modality == "vision"}
    assert {"qwen2_vl", "qwen2_5_vl", "gemma3_vision"} <= vision
    assert "qwen2_5" not in vision


def test_model_aliases_are_unique_and_point_into_their_family(families):
    seen: dict[str, str] = {}
    ids = {hub_id.lower(): f.name for f in families for hub_id in f.hf_ids + f.ms_ids}
    for family in families:
        assert family.model_aliases, family.name
        for alias, target in family.model_aliases:
            key = alias.lower().replace(".", "_")
            assert key not in seen, f"alias {alias!r} of {family.name} is also in {seen.get(key)}"
            seen[key] = family.name
            assert target in family.hf_ids, (family.name, alias, target)
            assert ids.get(key, family.name) == family.name, (alias, ids.get(key))
    assert seen["qwen2_5-7b-instruct"] == "qwen2_5"
    assert seen["llama3-8b-instruct"] == "llama3"


def test_family_names_and_aliases_are_lookup_keys(manager, families):
    registry = manager.registry("model_families")
    for family in families:
        for key in (family.name, *family.aliases):
            assert registry.get(key) is family
    assert registry.get("qwen2.5").name == "qwen2_5"
    assert registry.get("llama3.3").name == "llama3_1"


def _groups(families) -> dict[str, list[ModelFamily]]:
    groups: dict[str, list[ModelFamily]] = defaultdict(list)
    for family in families:
        for arch in family.architectures:
            groups[arch].append(family)
    return {arch: members for arch, members in groups.items() if len(members) > 1}


def test_shared_architectures_have_a_single_default(families):
    groups = _groups(families)
    assert {"Qwen2ForCausalLM", "LlamaForCausalLM", "Phi3ForCausalLM"} <= set(groups)
    for arch, members in groups.items():
        priorities = [f.priority for f in members]
        assert len(set(priorities)) == len(priorities), f"{arch}: tied priorities {priorities}"
        for family in members:
            assert family.template_hints or family.name_hints or family.config_hints, family.name


def test_name_hints_pick_each_family_from_its_own_ids(families):
    """The folder-name regexes of families sharing an architecture never claim each other's ids."""
    for arch, members in _groups(families).items():
        for family in members:
            for hub_id in family.hf_ids:
                claims = [
                    f.name for f in members if any(re.search(p, hub_id, re.IGNORECASE) for p in f.name_hints)
                ]
                assert claims == [family.name], f"{arch}: {hub_id} is claimed by {claims}"


def test_remote_code_families(families):
    remote = {f.name for f in families if f.remote_code}
    assert {"internlm2", "baichuan2", "minicpm", "chatglm4"} <= remote
    assert "qwen2_5" not in remote and "llama3_1" not in remote


@pytest.mark.parametrize("family", [f for f in FAMILIES if not f.remote_code], ids=lambda f: f.name)
def test_architecture_exists_in_installed_transformers(family):
    transformers = pytest.importorskip("transformers")
    if Version(family.min_transformers) > Version(transformers.__version__):
        pytest.skip(f"{family.name} needs transformers {family.min_transformers}")
    missing = [arch for arch in family.architectures if not hasattr(transformers, arch)]
    assert missing == [], f"{family.name}: transformers {transformers.__version__} lacks {missing}"


def test_module_stays_light():
    code = (
        "import sys, swift_core.builtin.model_families, swift_core.models.resolve\n"
        "heavy = [m for m in ('torch', 'transformers', 'numpy', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
