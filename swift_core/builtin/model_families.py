"""Built-in model families: hub ids, aliases, templates, LoRA targets and local-folder hints.

A family is a set of models that share an architecture and a chat template. Every hub id below
is a published Hugging Face id, paired with its ModelScope id where one exists; the lists were
checked against the model registrations of modelscope/ms-swift and hiyouga/LLaMA-Factory.

Families that share a Hugging Face architecture (Qwen2ForCausalLM, LlamaForCausalLM, ...) carry
hints so that a local folder resolves to one of them deterministically (see
`swift_core.models.resolve`): the chat template first, then the folder name / `_name_or_path`,
then config.json values, then `priority` (the highest is the architecture's default).

This module is imported at every CLI start-up: it holds data only and imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from swift_core.descriptors import ModelFamily
from swift_core.hookspecs import hookimpl

# Module names shared by most decoder-only models (Llama layout).
_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP = ("gate_proj", "up_proj", "down_proj")
# Multi-head latent attention (DeepSeek-V2/V3, MiniCPM3): q_proj when q_lora_rank is null.
_MLA = ("q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj")
# DeepSeek's special tokens use U+FF5C (fullwidth vertical line): "<｜Assistant｜>".
_DS_ASSISTANT = "<\uff5cAssistant\uff5c>"
_DS_USER = "<\uff5cUser\uff5c>"
# Config keys that moved in transformers 5 (rope_scaling -> rope_parameters).
_ROPE_TYPE = "rope_scaling.rope_type|rope_parameters.rope_type"
_ROPE_FACTOR = "rope_scaling.factor|rope_parameters.factor"

Pair = tuple[str, str | None]


def _same(org: str, *names: str) -> tuple[Pair, ...]:
    """Ids published under the same name on Hugging Face and ModelScope."""
    return tuple((f"{org}/{n}", f"{org}/{n}") for n in names)


def _alias_of(hub_id: str) -> str:
    """The short name users type for a hub id: `Qwen/Qwen2.5-7B-Instruct` -> `qwen2_5-7b-instruct`."""
    return hub_id.split("/", 1)[1].lower().replace(".", "_")


def _family(name: str, ids: tuple[Pair, ...], extra_aliases: dict[str, str] | None = None, **kw: Any):
    hf_ids = tuple(hf for hf, _ in ids)
    ms_ids = tuple(ms for _, ms in ids if ms)
    aliases: dict[str, str] = {_alias_of(hf): hf for hf in hf_ids}
    for alias, target in (extra_aliases or {}).items():
        if target not in hf_ids:
            raise ValueError(f"model family {name!r}: alias {alias!r} points to unknown id {target!r}")
        aliases[alias] = target
    return ModelFamily(name=name, hf_ids=hf_ids, ms_ids=ms_ids, model_aliases=tuple(aliases.items()), **kw)


def _sizes(fmt: str, sizes: str) -> tuple[str, ...]:
    return tuple(fmt.format(s) for s in sizes.split())


_QWEN1_5 = "0.5B 1.8B 4B 7B 14B 32B 72B 110B"
_QWEN2 = "0.5B 1.5B 7B 72B"
_QWEN2_5 = "0.5B 1.5B 3B 7B 14B 32B 72B"
_CODER = "0.5B 1.5B 3B 7B 14B 32B"

FAMILIES: tuple[ModelFamily, ...] = (
    # --- Qwen ---------------------------------------------------------------------------------
    _family(
        "qwen2",
        description="Qwen1.5, Qwen2, Qwen2-Math and CodeQwen1.5 (ChatML template)",
        ids=_same(
            "Qwen",
            *_sizes("Qwen1.5-{}-Chat", _QWEN1_5),
            *_sizes("Qwen1.5-{}", _QWEN1_5),
            *_sizes("Qwen1.5-{}-Chat-AWQ", _QWEN1_5),
            *_sizes("Qwen2-{}-Instruct", _QWEN2),
            *_sizes("Qwen2-{}", _QWEN2),
            *_sizes("Qwen2-{}-Instruct-AWQ", _QWEN2),
            *_sizes("Qwen2-Math-{}-Instruct", "1.5B 7B 72B"),
            *_sizes("Qwen2-Math-{}", "1.5B 7B 72B"),
            "CodeQwen1.5-7B",
            "CodeQwen1.5-7B-Chat",
            "CodeQwen1.5-7B-Chat-AWQ",
        ),
        extra_aliases={"qwen1_5-7b": "Qwen/Qwen1.5-7B", "qwen2-7b": "Qwen/Qwen2-7B"},
        aliases=("qwen1_5", "qwen1.5"),
        architectures=("Qwen2ForCausalLM",),
        model_types=("qwen2",),
        template="chatml",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.37",
        priority=5,
        name_hints=(r"qwen1[._]5", r"codeqwen", r"qwen2(?![._]?5)(?!\d)"),
        template_hints=("<|im_start|>", "You are a helpful assistant.", "!You are Qwen, created by Alibaba"),
    ),
    _family(
        "qwen2_5",
        description="Qwen2.5, Qwen2.5-Coder, Qwen2.5-Math and Qwen2.5-1M",
        ids=_same(
            "Qwen",
            *_sizes("Qwen2.5-{}-Instruct", _QWEN2_5),
            *_sizes("Qwen2.5-{}", _QWEN2_5),
            *_sizes("Qwen2.5-{}-Instruct-AWQ", _QWEN2_5),
            *_sizes("Qwen2.5-Coder-{}-Instruct", _CODER),
            *_sizes("Qwen2.5-Coder-{}", _CODER),
            *_sizes("Qwen2.5-Math-{}-Instruct", "1.5B 7B 72B"),
            *_sizes("Qwen2.5-Math-{}", "1.5B 7B 72B"),
            "Qwen2.5-7B-Instruct-1M",
            "Qwen2.5-14B-Instruct-1M",
        ),
        # The seed article's short names (`swift sft --model qwen-7b`): the current Qwen of that size.
        extra_aliases={
            "qwen-7b": "Qwen/Qwen2.5-7B-Instruct",
            "qwen-7b-chat": "Qwen/Qwen2.5-7B-Instruct",
            "qwen-7b-base": "Qwen/Qwen2.5-7B",
            "qwen-14b": "Qwen/Qwen2.5-14B-Instruct",
            "qwen-72b": "Qwen/Qwen2.5-72B-Instruct",
            "qwen-1_5b": "Qwen/Qwen2.5-1.5B-Instruct",
            "qwen-0_5b": "Qwen/Qwen2.5-0.5B-Instruct",
        },
        aliases=("qwen2.5", "qwen25"),
        architectures=("Qwen2ForCausalLM",),
        model_types=("qwen2",),
        template="qwen2_5",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.37",
        priority=10,
        name_hints=(r"qwen2[._]?5",),
        template_hints=("<|im_start|>", "You are Qwen, created by Alibaba Cloud"),
    ),
    _family(
        "qwen2_moe",
        description="Qwen1.5-MoE and Qwen2-MoE (ChatML template; experts are fused in transformers 5)",
        ids=_same(
            "Qwen",
            "Qwen1.5-MoE-A2.7B",
            "Qwen1.5-MoE-A2.7B-Chat",
            "Qwen1.5-MoE-A2.7B-Chat-GPTQ-Int4",
            "Qwen2-57B-A14B",
            "Qwen2-57B-A14B-Instruct",
            "Qwen2-57B-A14B-Instruct-GPTQ-Int4",
        ),
        aliases=("qwen1_5_moe", "qwen1.5-moe", "qwen2-moe"),
        architectures=("Qwen2MoeForCausalLM",),
        model_types=("qwen2_moe",),
        template="chatml",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.40",
    ),
    _family(
        "qwen3",
        description="Qwen3 dense models (hybrid thinking template)",
        ids=_same(
            "Qwen",
            *_sizes("Qwen3-{}", "0.6B 1.7B 4B 8B 14B 32B"),
            *_sizes("Qwen3-{}-Base", "0.6B 1.7B 4B 8B 14B"),
            *_sizes("Qwen3-{}-FP8", "0.6B 1.7B 4B 8B 14B 32B"),
            *_sizes("Qwen3-{}-AWQ", "4B 8B 14B 32B"),
        ),
        architectures=("Qwen3ForCausalLM",),
        model_types=("qwen3",),
        template="qwen3",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.51",
    ),
    _family(
        "qwen3_moe",
        description="Qwen3 mixture-of-experts models (experts are fused in transformers 5)",
        ids=_same(
            "Qwen",
            "Qwen3-30B-A3B-Base",
            "Qwen3-30B-A3B",
            "Qwen3-235B-A22B",
            "Qwen3-30B-A3B-FP8",
            "Qwen3-235B-A22B-FP8",
        ),
        aliases=("qwen3-moe",),
        architectures=("Qwen3MoeForCausalLM",),
        model_types=("qwen3_moe",),
        template="qwen3",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN,
        min_transformers="4.51",
    ),
    _family(
        "qwen2_vl",
        description="Qwen2-VL image and video models",
        ids=_same(
            "Qwen",
            *_sizes("Qwen2-VL-{}-Instruct", "2B 7B 72B"),
            *_sizes("Qwen2-VL-{}", "2B 7B 72B"),
            *_sizes("Qwen2-VL-{}-Instruct-AWQ", "2B 7B 72B"),
        ),
        aliases=("qwen2-vl",),
        architectures=("Qwen2VLForConditionalGeneration",),
        model_types=("qwen2_vl",),
        template="qwen2_vl",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        modality="vision",
        modalities=("text", "image"),
        head="vision_lm",
        box_codec="qwen2_vl",
        min_transformers="4.45",
    ),
    _family(
        "qwen2_5_vl",
        description="Qwen2.5-VL image and video models",
        ids=_same(
            "Qwen",
            *_sizes("Qwen2.5-VL-{}-Instruct", "3B 7B 32B 72B"),
            *_sizes("Qwen2.5-VL-{}-Instruct-AWQ", "3B 7B 32B 72B"),
        ),
        aliases=("qwen2.5-vl",),
        architectures=("Qwen2_5_VLForConditionalGeneration",),
        model_types=("qwen2_5_vl",),
        template="qwen2_vl",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        modality="vision",
        modalities=("text", "image"),
        head="vision_lm",
        box_codec="qwen2_5_vl",
        min_transformers="4.49",
    ),
    # --- Llama --------------------------------------------------------------------------------
    _family(
        "llama2",
        description="Llama 2 base and chat models ([INST] template)",
        ids=(
            ("meta-llama/Llama-2-7b-hf", "modelscope/Llama-2-7b-ms"),
            ("meta-llama/Llama-2-13b-hf", "modelscope/Llama-2-13b-ms"),
            ("meta-llama/Llama-2-70b-hf", "modelscope/Llama-2-70b-ms"),
            ("meta-llama/Llama-2-7b-chat-hf", "modelscope/Llama-2-7b-chat-ms"),
            ("meta-llama/Llama-2-13b-chat-hf", "modelscope/Llama-2-13b-chat-ms"),
            ("meta-llama/Llama-2-70b-chat-hf", "modelscope/Llama-2-70b-chat-ms"),
        ),
        extra_aliases={
            "llama2-7b": "meta-llama/Llama-2-7b-hf",
            "llama2-13b": "meta-llama/Llama-2-13b-hf",
            "llama2-70b": "meta-llama/Llama-2-70b-hf",
            "llama2-7b-chat": "meta-llama/Llama-2-7b-chat-hf",
            "llama2-13b-chat": "meta-llama/Llama-2-13b-chat-hf",
            "llama2-70b-chat": "meta-llama/Llama-2-70b-chat-hf",
        },
        aliases=("llama-2",),
        architectures=("LlamaForCausalLM",),
        model_types=("llama",),
        template="llama2",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.31",
        priority=2,
        name_hints=(r"llama-?2(?![.\d])",),
        template_hints=("[INST]", "<<SYS>>"),
        config_hints=(("vocab_size", 32000),),
    ),
    _family(
        "llama3",
        description="Llama 3 (8B, 70B) base and instruct models",
        ids=(
            ("meta-llama/Meta-Llama-3-8B", "LLM-Research/Meta-Llama-3-8B"),
            ("meta-llama/Meta-Llama-3-8B-Instruct", "LLM-Research/Meta-Llama-3-8B-Instruct"),
            ("meta-llama/Meta-Llama-3-70B", "LLM-Research/Meta-Llama-3-70B"),
            ("meta-llama/Meta-Llama-3-70B-Instruct", "LLM-Research/Meta-Llama-3-70B-Instruct"),
        ),
        extra_aliases={
            "llama3-8b": "meta-llama/Meta-Llama-3-8B",
            "llama3-8b-instruct": "meta-llama/Meta-Llama-3-8B-Instruct",
            "llama3-70b": "meta-llama/Meta-Llama-3-70B",
            "llama3-70b-instruct": "meta-llama/Meta-Llama-3-70B-Instruct",
        },
        aliases=("llama-3",),
        architectures=("LlamaForCausalLM",),
        model_types=("llama",),
        template="llama3",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.40",
        priority=4,
        name_hints=(r"llama-?3(?![._]?\d)",),
        template_hints=("<|start_header_id|>",),
        config_hints=(("vocab_size", 128256),),
    ),
    _family(
        "llama3_1",
        description="Llama 3.1 (8B, 70B, 405B) and Llama 3.3 70B: same architecture and template",
        ids=(
            ("meta-llama/Meta-Llama-3.1-8B", "LLM-Research/Meta-Llama-3.1-8B"),
            ("meta-llama/Meta-Llama-3.1-8B-Instruct", "LLM-Research/Meta-Llama-3.1-8B-Instruct"),
            ("meta-llama/Meta-Llama-3.1-70B", "LLM-Research/Meta-Llama-3.1-70B"),
            ("meta-llama/Meta-Llama-3.1-70B-Instruct", "LLM-Research/Meta-Llama-3.1-70B-Instruct"),
            ("meta-llama/Meta-Llama-3.1-405B", "LLM-Research/Meta-Llama-3.1-405B"),
            ("meta-llama/Meta-Llama-3.1-405B-Instruct", "LLM-Research/Meta-Llama-3.1-405B-Instruct"),
            ("meta-llama/Llama-3.3-70B-Instruct", "LLM-Research/Llama-3.3-70B-Instruct"),
        ),
        extra_aliases={
            "llama3_1-8b": "meta-llama/Meta-Llama-3.1-8B",
            "llama3_1-8b-instruct": "meta-llama/Meta-Llama-3.1-8B-Instruct",
            "llama3_1-70b": "meta-llama/Meta-Llama-3.1-70B",
            "llama3_1-70b-instruct": "meta-llama/Meta-Llama-3.1-70B-Instruct",
            "llama3_1-405b": "meta-llama/Meta-Llama-3.1-405B",
            "llama3_1-405b-instruct": "meta-llama/Meta-Llama-3.1-405B-Instruct",
            "llama3_3-70b-instruct": "meta-llama/Llama-3.3-70B-Instruct",
            # Meta later renamed the 3.1 repositories; the hub redirects the new names.
            "meta-llama/Llama-3.1-8B": "meta-llama/Meta-Llama-3.1-8B",
            "meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Meta-Llama-3.1-8B-Instruct",
            "meta-llama/Llama-3.1-70B": "meta-llama/Meta-Llama-3.1-70B",
            "meta-llama/Llama-3.1-70B-Instruct": "meta-llama/Meta-Llama-3.1-70B-Instruct",
            "meta-llama/Llama-3.1-405B": "meta-llama/Meta-Llama-3.1-405B",
            "meta-llama/Llama-3.1-405B-Instruct": "meta-llama/Meta-Llama-3.1-405B-Instruct",
        },
        aliases=("llama3.1", "llama3_3", "llama3.3"),
        architectures=("LlamaForCausalLM",),
        model_types=("llama",),
        template="llama3_1",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.43",
        priority=10,
        name_hints=(r"llama-?3[._][13](?!\d)",),
        template_hints=("<|start_header_id|>", "Cutting Knowledge Date"),
        config_hints=(("vocab_size", 128256), (_ROPE_TYPE, "llama3"), (_ROPE_FACTOR, 8.0)),
    ),
    _family(
        "llama3_2",
        description="Llama 3.2 text models (1B, 3B)",
        ids=(
            ("meta-llama/Llama-3.2-1B", "LLM-Research/Llama-3.2-1B"),
            ("meta-llama/Llama-3.2-1B-Instruct", "LLM-Research/Llama-3.2-1B-Instruct"),
            ("meta-llama/Llama-3.2-3B", "LLM-Research/Llama-3.2-3B"),
            ("meta-llama/Llama-3.2-3B-Instruct", "LLM-Research/Llama-3.2-3B-Instruct"),
        ),
        aliases=("llama3.2",),
        architectures=("LlamaForCausalLM",),
        model_types=("llama",),
        template="llama3_2",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.45",
        priority=6,
        name_hints=(r"llama-?3[._]2(?!\d)",),
        template_hints=("<|start_header_id|>", "Cutting Knowledge Date", "strftime_now"),
        config_hints=(("vocab_size", 128256), (_ROPE_TYPE, "llama3"), (_ROPE_FACTOR, 32.0)),
    ),
    # --- Mistral ------------------------------------------------------------------------------
    _family(
        "mistral",
        description="Mistral 7B v0.1-v0.3 base and instruct models",
        ids=(
            ("mistralai/Mistral-7B-v0.1", "AI-ModelScope/Mistral-7B-v0.1"),
            ("alpindale/Mistral-7B-v0.2-hf", "AI-ModelScope/Mistral-7B-v0.2-hf"),
            ("mistralai/Mistral-7B-v0.3", "LLM-Research/mistral-7b-v0.3"),
            ("mistralai/Mistral-7B-Instruct-v0.1", "AI-ModelScope/Mistral-7B-Instruct-v0.1"),
            ("mistralai/Mistral-7B-Instruct-v0.2", "AI-ModelScope/Mistral-7B-Instruct-v0.2"),
            ("mistralai/Mistral-7B-Instruct-v0.3", "LLM-Research/Mistral-7B-Instruct-v0.3"),
        ),
        architectures=("MistralForCausalLM",),
        model_types=("mistral",),
        template="mistral",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.34",
    ),
    _family(
        "mixtral",
        description="Mixtral 8x7B and 8x22B (experts are fused in transformers 5: attention only)",
        ids=(
            ("mistralai/Mixtral-8x7B-v0.1", "AI-ModelScope/Mixtral-8x7B-v0.1"),
            ("mistralai/Mixtral-8x7B-Instruct-v0.1", "AI-ModelScope/Mixtral-8x7B-Instruct-v0.1"),
            ("mistralai/Mixtral-8x22B-v0.1", "AI-ModelScope/Mixtral-8x22B-v0.1"),
            ("mistralai/Mixtral-8x22B-Instruct-v0.1", "AI-ModelScope/Mixtral-8x22B-Instruct-v0.1"),
        ),
        architectures=("MixtralForCausalLM",),
        model_types=("mixtral",),
        template="mistral",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN,
        min_transformers="4.36",
    ),
    # --- Gemma --------------------------------------------------------------------------------
    _family(
        "gemma",
        description="Gemma (first generation) 2B and 7B",
        ids=(
            ("google/gemma-2b", "AI-ModelScope/gemma-2b"),
            ("google/gemma-2b-it", "AI-ModelScope/gemma-2b-it"),
            ("google/gemma-7b", "AI-ModelScope/gemma-7b"),
            ("google/gemma-7b-it", "AI-ModelScope/gemma-7b-it"),
        ),
        architectures=("GemmaForCausalLM",),
        model_types=("gemma",),
        template="gemma",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.38",
    ),
    _family(
        "gemma2",
        description="Gemma 2 (2B, 9B, 27B)",
        ids=tuple(
            (f"google/gemma-2-{n}", f"LLM-Research/gemma-2-{n}")
            for n in ("2b", "2b-it", "9b", "9b-it", "27b", "27b-it")
        ),
        aliases=("gemma-2",),
        architectures=("Gemma2ForCausalLM",),
        model_types=("gemma2",),
        template="gemma",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.42",
    ),
    _family(
        "gemma3_text",
        description="Gemma 3 text-only models (270M, 1B)",
        ids=(
            ("google/gemma-3-1b-pt", "LLM-Research/gemma-3-1b-pt"),
            ("google/gemma-3-1b-it", "LLM-Research/gemma-3-1b-it"),
            ("google/gemma-3-270m", "google/gemma-3-270m"),
            ("google/gemma-3-270m-it", "google/gemma-3-270m-it"),
        ),
        aliases=("gemma3-text",),
        architectures=("Gemma3ForCausalLM",),
        model_types=("gemma3_text",),
        template="gemma3",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.50",
    ),
    _family(
        "gemma3_vision",
        description="Gemma 3 image-text models (4B, 12B, 27B)",
        ids=tuple(
            (f"google/gemma-3-{n}", f"LLM-Research/gemma-3-{n}")
            for n in ("4b-pt", "4b-it", "12b-pt", "12b-it", "27b-pt", "27b-it")
        ),
        aliases=("gemma3",),
        architectures=("Gemma3ForConditionalGeneration",),
        model_types=("gemma3",),
        template="gemma3",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        modality="vision",
        min_transformers="4.50",
    ),
    # --- Phi ----------------------------------------------------------------------------------
    _family(
        "phi3",
        description="Phi-3, Phi-3.5-mini and Phi-4-mini (fused qkv_proj / gate_up_proj)",
        ids=tuple(
            (f"microsoft/{n}", f"LLM-Research/{n}")
            for n in (
                "Phi-3-mini-4k-instruct",
                "Phi-3-mini-128k-instruct",
                "Phi-3-medium-4k-instruct",
                "Phi-3-medium-128k-instruct",
                "Phi-3.5-mini-instruct",
                "Phi-4-mini-instruct",
            )
        ),
        aliases=("phi-3", "phi3_5", "phi3.5"),
        architectures=("Phi3ForCausalLM",),
        model_types=("phi3",),
        template="phi3",
        lora_target_modules=("qkv_proj", "o_proj"),
        all_linear_modules=("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
        min_transformers="4.40",
        priority=10,
        name_hints=(r"phi-?3", r"phi-?4-mini"),
        template_hints=("<|assistant|>", "<|end|>"),
    ),
    _family(
        "phi4",
        description="Phi-4 14B (Phi3 architecture, ChatML-like <|im_sep|> template)",
        ids=(("microsoft/phi-4", "LLM-Research/phi-4"),),
        aliases=("phi-4",),
        architectures=("Phi3ForCausalLM",),
        model_types=("phi3",),
        template="phi4",
        lora_target_modules=("qkv_proj", "o_proj"),
        all_linear_modules=("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
        min_transformers="4.40",
        priority=5,
        name_hints=(r"phi-?4(?!-?mini)",),
        template_hints=("<|im_sep|>",),
        config_hints=(("vocab_size", 100352),),
    ),
    # --- InternLM -----------------------------------------------------------------------------
    _family(
        "internlm2",
        description="InternLM2 and InternLM2.5 (remote code; fused wqkv)",
        ids=tuple(
            (f"internlm/{n}", f"Shanghai_AI_Laboratory/{n}")
            for n in (
                "internlm2-1_8b",
                "internlm2-chat-1_8b",
                "internlm2-chat-1_8b-sft",
                "internlm2-base-7b",
                "internlm2-7b",
                "internlm2-chat-7b",
                "internlm2-chat-7b-sft",
                "internlm2-base-20b",
                "internlm2-20b",
                "internlm2-chat-20b",
                "internlm2-chat-20b-sft",
                "internlm2-math-base-7b",
                "internlm2-math-7b",
                "internlm2-math-base-20b",
                "internlm2-math-20b",
                "internlm2_5-1_8b",
                "internlm2_5-1_8b-chat",
                "internlm2_5-7b",
                "internlm2_5-7b-chat",
                "internlm2_5-7b-chat-1m",
                "internlm2_5-20b",
                "internlm2_5-20b-chat",
            )
        ),
        aliases=("internlm2_5", "internlm2.5"),
        architectures=("InternLM2ForCausalLM",),
        model_types=("internlm2",),
        template="internlm2",
        lora_target_modules=("wqkv", "wo"),
        all_linear_modules=("wqkv", "wo", "w1", "w2", "w3"),
        min_transformers="4.38",
        remote_code=True,
    ),
    _family(
        "internlm3",
        description="InternLM3 8B instruct (remote code, Llama-style modules, InternLM2 template)",
        ids=(("internlm/internlm3-8b-instruct", "Shanghai_AI_Laboratory/internlm3-8b-instruct"),),
        architectures=("InternLM3ForCausalLM",),
        model_types=("internlm3",),
        template="internlm2",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.48",
        remote_code=True,
    ),
    # --- GLM-4 --------------------------------------------------------------------------------
    _family(
        "chatglm4",
        description="GLM-4-9B original release (ChatGLMModel, remote code)",
        ids=(
            ("THUDM/glm-4-9b", "ZhipuAI/glm-4-9b"),
            ("THUDM/glm-4-9b-chat", "ZhipuAI/glm-4-9b-chat"),
            ("THUDM/glm-4-9b-chat-1m", "ZhipuAI/glm-4-9b-chat-1m"),
        ),
        aliases=("glm4_chatglm",),
        architectures=("ChatGLMModel", "ChatGLMForConditionalGeneration"),
        model_types=("chatglm",),
        template="glm4",
        lora_target_modules=("query_key_value", "dense"),
        all_linear_modules=("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
        min_transformers="4.42",
        remote_code=True,
    ),
    _family(
        "glm4",
        description="GLM-4-9B transformers port (-hf) and GLM-Edge chat models (GlmForCausalLM)",
        ids=(
            ("THUDM/glm-4-9b-hf", None),
            ("THUDM/glm-4-9b-chat-hf", "ZhipuAI/glm-4-9b-chat-hf"),
            ("THUDM/glm-4-9b-chat-1m-hf", "ZhipuAI/glm-4-9b-chat-1m-hf"),
            ("THUDM/glm-edge-1.5b-chat", "ZhipuAI/glm-edge-1.5b-chat"),
            ("THUDM/glm-edge-4b-chat", "ZhipuAI/glm-edge-4b-chat"),
        ),
        aliases=("glm-4",),
        architectures=("GlmForCausalLM",),
        model_types=("glm",),
        template="glm4",
        lora_target_modules=_ATTN,
        all_linear_modules=(*_ATTN, "gate_up_proj", "down_proj"),
        min_transformers="4.46",
    ),
    _family(
        "glm4_0414",
        description="GLM-4-0414 and GLM-Z1-0414 (Glm4ForCausalLM)",
        ids=tuple(
            (f"THUDM/{n}", f"ZhipuAI/{n}")
            for n in (
                "GLM-4-9B-0414",
                "GLM-4-32B-0414",
                "GLM-4-32B-Base-0414",
                "GLM-Z1-9B-0414",
                "GLM-Z1-32B-0414",
            )
        ),
        aliases=("glm-4-0414",),
        architectures=("Glm4ForCausalLM",),
        model_types=("glm4",),
        template="glm4",
        lora_target_modules=_ATTN,
        all_linear_modules=(*_ATTN, "gate_up_proj", "down_proj"),
        min_transformers="4.51",
    ),
    # --- DeepSeek -----------------------------------------------------------------------------
    _family(
        "deepseek",
        description="DeepSeek LLM and DeepSeek-Math (Llama architecture, 'User: / Assistant:' template)",
        ids=_same(
            "deepseek-ai",
            "deepseek-llm-7b-base",
            "deepseek-llm-7b-chat",
            "deepseek-llm-67b-base",
            "deepseek-llm-67b-chat",
            "deepseek-math-7b-base",
            "deepseek-math-7b-instruct",
            "deepseek-math-7b-rl",
        ),
        aliases=("deepseek_llm", "deepseek-llm"),
        architectures=("LlamaForCausalLM",),
        model_types=("llama",),
        template="deepseek",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.31",
        priority=1,
        name_hints=(r"deepseek-(llm|math)",),
        template_hints=("User: ", "Assistant:"),
        config_hints=(("vocab_size", 102400),),
    ),
    _family(
        "deepseek_v2",
        description="DeepSeek-V2, V2-Lite and Coder-V2 (MLA + MoE, 'User: / Assistant:' template)",
        ids=_same(
            "deepseek-ai",
            "DeepSeek-V2",
            "DeepSeek-V2-Chat",
            "DeepSeek-V2-Lite",
            "DeepSeek-V2-Lite-Chat",
            "DeepSeek-Coder-V2-Base",
            "DeepSeek-Coder-V2-Instruct",
            "DeepSeek-Coder-V2-Lite-Base",
            "DeepSeek-Coder-V2-Lite-Instruct",
        ),
        aliases=("deepseek-v2",),
        architectures=("DeepseekV2ForCausalLM",),
        model_types=("deepseek_v2",),
        template="deepseek",
        lora_target_modules=_MLA,
        all_linear_modules=_MLA + _MLP,
        min_transformers="4.54",
        priority=10,
        name_hints=(r"deepseek-(coder-)?v2(?![._]\d)",),
        template_hints=("User: ", "Assistant:"),
    ),
    _family(
        "deepseek_v2_5",
        description="DeepSeek-V2.5 and V2.5-1210 (V2 architecture, <｜User｜> template as in V3)",
        ids=_same("deepseek-ai", "DeepSeek-V2.5", "DeepSeek-V2.5-1210"),
        aliases=("deepseek-v2.5", "deepseek_v2.5"),
        architectures=("DeepseekV2ForCausalLM",),
        model_types=("deepseek_v2",),
        template="deepseek_v3",
        lora_target_modules=_MLA,
        all_linear_modules=_MLA + _MLP,
        min_transformers="4.54",
        priority=5,
        name_hints=(r"deepseek-v2[._]5",),
        template_hints=(_DS_USER, _DS_ASSISTANT),
    ),
    _family(
        "deepseek_v3",
        description="DeepSeek-V3 and V3-0324",
        ids=_same("deepseek-ai", "DeepSeek-V3-Base", "DeepSeek-V3", "DeepSeek-V3-0324"),
        aliases=("deepseek-v3",),
        architectures=("DeepseekV3ForCausalLM",),
        model_types=("deepseek_v3",),
        template="deepseek_v3",
        lora_target_modules=_MLA,
        all_linear_modules=_MLA + _MLP,
        min_transformers="4.51",
        priority=10,
        name_hints=(r"deepseek-v3",),
        template_hints=(_DS_ASSISTANT,),
    ),
    _family(
        "deepseek_r1",
        description="DeepSeek-R1, R1-Zero and R1-0528 (V3 architecture, reasoning template)",
        ids=_same("deepseek-ai", "DeepSeek-R1", "DeepSeek-R1-Zero", "DeepSeek-R1-0528"),
        aliases=("deepseek-r1",),
        architectures=("DeepseekV3ForCausalLM",),
        model_types=("deepseek_v3",),
        template="deepseek_r1",
        lora_target_modules=_MLA,
        all_linear_modules=_MLA + _MLP,
        min_transformers="4.51",
        priority=5,
        name_hints=(r"deepseek-r1",),
        template_hints=(_DS_ASSISTANT, "</think>"),
    ),
    _family(
        "deepseek_r1_distill_qwen",
        description="DeepSeek-R1 distilled into Qwen2.5 (Qwen2 architecture, R1 template)",
        ids=_same("deepseek-ai", *_sizes("DeepSeek-R1-Distill-Qwen-{}", "1.5B 7B 14B 32B")),
        architectures=("Qwen2ForCausalLM",),
        model_types=("qwen2",),
        template="deepseek_r1",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.37",
        priority=1,
        name_hints=(r"r1[-_]?distill",),
        template_hints=(_DS_ASSISTANT,),
    ),
    _family(
        "deepseek_r1_distill_llama",
        description="DeepSeek-R1 distilled into Llama 3.1 8B / 3.3 70B (Llama architecture, R1 template)",
        ids=_same("deepseek-ai", "DeepSeek-R1-Distill-Llama-8B", "DeepSeek-R1-Distill-Llama-70B"),
        architectures=("LlamaForCausalLM",),
        model_types=("llama",),
        template="deepseek_r1",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.43",
        priority=0,
        name_hints=(r"r1[-_]?distill",),
        template_hints=(_DS_ASSISTANT,),
    ),
    # --- Yi, Baichuan, MiniCPM ----------------------------------------------------------------
    _family(
        "yi",
        description="Yi and Yi-1.5 (Llama architecture, ChatML-style template)",
        ids=tuple(
            (f"01-ai/{n}", f"01ai/{n}")
            for n in (
                "Yi-6B",
                "Yi-6B-200K",
                "Yi-6B-Chat",
                "Yi-6B-Chat-4bits",
                "Yi-6B-Chat-8bits",
                "Yi-9B",
                "Yi-9B-200K",
                "Yi-34B",
                "Yi-34B-200K",
                "Yi-34B-Chat",
                "Yi-34B-Chat-4bits",
                "Yi-34B-Chat-8bits",
                "Yi-1.5-6B",
                "Yi-1.5-6B-Chat",
                "Yi-1.5-9B",
                "Yi-1.5-9B-Chat",
                "Yi-1.5-9B-Chat-16K",
                "Yi-1.5-34B",
                "Yi-1.5-34B-Chat",
                "Yi-1.5-34B-Chat-16K",
            )
        ),
        aliases=("yi1_5", "yi-1.5"),
        architectures=("LlamaForCausalLM",),
        model_types=("llama",),
        template="yi",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.34",
        priority=3,
        name_hints=(r"(^|[/_-])yi[-_]",),
        template_hints=("<|im_start|>",),
        config_hints=(("vocab_size", 64000),),
    ),
    _family(
        "baichuan2",
        description="Baichuan 2 (7B, 13B; remote code, fused W_pack)",
        ids=_same(
            "baichuan-inc",
            "Baichuan2-7B-Base",
            "Baichuan2-7B-Chat",
            "Baichuan2-13B-Base",
            "Baichuan2-13B-Chat",
            "Baichuan2-7B-Chat-4bits",
            "Baichuan2-13B-Chat-4bits",
        ),
        aliases=("baichuan-2",),
        architectures=("BaichuanForCausalLM",),
        model_types=("baichuan",),
        template="baichuan2",
        lora_target_modules=("W_pack", "o_proj"),
        all_linear_modules=("W_pack", "o_proj", *_MLP),
        min_transformers="4.29",
        remote_code=True,
    ),
    _family(
        "minicpm",
        description="MiniCPM 1B/2B (remote code, <用户>/<AI> template)",
        ids=(
            ("openbmb/MiniCPM-2B-sft-bf16", "OpenBMB/miniCPM-bf16"),
            ("openbmb/MiniCPM-2B-dpo-bf16", "OpenBMB/MiniCPM-2B-dpo-bf16"),
            ("openbmb/MiniCPM-2B-sft-fp32", "OpenBMB/MiniCPM-2B-sft-fp32"),
            ("openbmb/MiniCPM-2B-dpo-fp32", "OpenBMB/MiniCPM-2B-dpo-fp32"),
            ("openbmb/MiniCPM-1B-sft-bf16", "OpenBMB/MiniCPM-1B-sft-bf16"),
        ),
        architectures=("MiniCPMForCausalLM",),
        model_types=("minicpm",),
        template="minicpm",
        lora_target_modules=_ATTN,
        all_linear_modules=_ATTN + _MLP,
        min_transformers="4.36",
        remote_code=True,
    ),
    _family(
        "minicpm3",
        description="MiniCPM3-4B (MLA attention, ChatML template; remote code on the hub)",
        ids=(("openbmb/MiniCPM3-4B", "OpenBMB/MiniCPM3-4B"),),
        architectures=("MiniCPM3ForCausalLM",),
        model_types=("minicpm3",),
        template="chatml",
        lora_target_modules=_MLA,
        all_linear_modules=_MLA + _MLP,
        min_transformers="4.36",
        remote_code=True,
    ),
)


@hookimpl
def register_model_families(register):
    for family in FAMILIES:
        register(family)
