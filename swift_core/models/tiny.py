"""Tiny models for tests, benchmarks and the demo: random weights, a tokenizer trained on the spot.

For a model family (or a transformers `model_type`) this writes a Hugging Face folder: a
scaled-down config of the family's real architecture with random weights, and a byte-level BPE
tokenizer trained on `swift_core.models.corpus` with the family's special tokens and official
chat template. Nothing downloads, so it works offline and in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError

SIZES: dict[str, dict[str, int]] = {
    # ~0.3M parameters: fast enough for every test.
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    # ~7M: the demo's base model.
    "small": {
        "hidden_size": 256,
        "intermediate_size": 704,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
    },
    # ~50M: benchmarks.
    "medium": {
        "hidden_size": 768,
        "intermediate_size": 2048,
        "num_hidden_layers": 8,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
    },
}

# Per model_type settings beyond the common sizes (MoE experts, MLA ranks, ...).
ARCH_OVERRIDES: dict[str, dict[str, Any]] = {
    "qwen2_moe": {
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 64,
        "shared_expert_intermediate_size": 64,
    },
    "qwen3_moe": {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64},
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2},
    "deepseek_v2": {
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 64,
        "n_shared_experts": 1,
        "kv_lora_rank": 32,
        "q_lora_rank": None,
        "qk_rope_head_dim": 8,
        "qk_nope_head_dim": 8,
        "v_head_dim": 16,
        "first_k_dense_replace": 1,
        "n_group": 1,
        "topk_group": 1,
    },
    "deepseek_v3": {
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 64,
        "n_shared_experts": 1,
        "kv_lora_rank": 32,
        "q_lora_rank": 32,
        "qk_rope_head_dim": 8,
        "qk_nope_head_dim": 8,
        "v_head_dim": 16,
        "first_k_dense_replace": 1,
        "n_group": 1,
        "topk_group": 1,
    },
    "gemma2": {"head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 64},
    "gemma3_text": {"head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 64},
    "phi3": {"pad_token_id": 0},
}


# Vision-language model types: their config nests the text sizes in `text_config` and adds a tiny
# vision tower; the folder also gets the image processor a hub folder ships
# (preprocessor_config.json), so it loads through the same code as a real one.
VISION_CONFIGS: dict[str, dict[str, Any]] = {
    "qwen2_vl": {
        "depth": 2,
        "embed_dim": 32,
        "num_heads": 2,
        "mlp_ratio": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    },
    "qwen2_5_vl": {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 56,
        "fullatt_block_indexes": [1],
    },
}
# Qwen2-VL's grounding markers: single (special) tokens in the real tokenizer, so in the tiny one too
# (the box codecs write them; split into bytes they would be 10 tokens each).
GROUNDING_TOKENS = (
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
)
TINY_VL_INIT = 0.1
TINY_VL_TEXT_INIT = 0.2
# The vision config key of the merger's output width (the text model's hidden size).
VISION_OUTPUT_WIDTH = {"qwen2_vl": "hidden_size", "qwen2_5_vl": "out_hidden_size"}
# The special tokens of a vision-language config, by the config key that holds their id.
VISION_TOKENS = {
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
}


def _vision_config(model_type: str, text: dict[str, Any], tokenizer: Any) -> Any:
    """A tiny vision-language config: `text` as its text part (with the multimodal rotary sections
    Qwen2-VL needs), a tiny vision tower whose merger writes the text width, and the ids of its
    vision tokens from `tokenizer`."""
    from transformers import AutoConfig

    half_head = text["hidden_size"] // text["num_attention_heads"] // 2
    section = [half_head // 4, (half_head - half_head // 4) // 2]
    section.append(half_head - sum(section))
    # A wider initialisation than transformers' 0.02: with 64-wide layers and a frozen, tied head
    # (LoRA), 0.02 caps the logits near uniform and an adapter cannot make an answer likely.
    text = {
        **text,
        "rope_scaling": {"type": "mrope", "mrope_section": section},
        "initializer_range": TINY_VL_TEXT_INIT,
        "bos_token_id": text.get("bos_token_id"),
    }
    vision = {
        **VISION_CONFIGS[model_type],
        VISION_OUTPUT_WIDTH[model_type]: text["hidden_size"],
        "initializer_range": TINY_VL_INIT,
    }
    ids = {key: tokenizer.convert_tokens_to_ids(tok) for key, tok in VISION_TOKENS.items()}
    return AutoConfig.for_model(
        model_type,
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=True,
        **{k: v for k, v in text.items() if k.endswith("token_id")},
        **ids,
    )


def save_image_processor(
    out: Path, config: Any, min_pixels: int = 56 * 56, max_pixels: int = 112 * 112
) -> None:
    """The Qwen2-VL image processor (its Pillow backend: no torchvision here) next to the weights."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    vision = config.vision_config
    Qwen2VLImageProcessorPil(
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        patch_size=vision.patch_size,
        merge_size=vision.spatial_merge_size,
        temporal_patch_size=vision.temporal_patch_size,
    ).save_pretrained(out)


def train_tokenizer(
    template: Any,
    vocab_size: int = 2000,
    seed: int = 0,
    jinja: str | None = None,
    *,
    individual_digits: bool = False,
    extra_special_tokens: tuple[str, ...] = (),
) -> Any:
    """A byte-level BPE tokenizer with the template's special tokens, as a transformers tokenizer.

    `individual_digits`: every digit is a token of its own (as Qwen's real tokenizers do), so a
    number such as a box coordinate is written digit by digit instead of in the odd byte pieces a
    BPE trained on English text merges digits into. `extra_special_tokens`: tokens the real
    tokenizer has beyond the template's (Qwen2-VL's grounding markers)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from swift_core.models.corpus import generate_corpus

    specials = list(dict.fromkeys([*template.all_special_tokens(), *extra_special_tokens]))
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if individual_digits
        else byte_level
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(generate_corpus(6000, seed=seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=template.bos_token,
        eos_token=template.eos_token or None,
        pad_token=template.pad_token or template.eos_token or None,
        chat_template=jinja,
        clean_up_tokenization_spaces=False,
    )
    return fast


def build_tiny_model(
    out_dir: str | Path,
    family: str = "qwen2_5",
    *,
    size: str = "tiny",
    model_type: str | None = None,
    template: str | None = None,
    vocab_size: int = 2000,
    seed: int = 0,
    manager: Any = None,
) -> Path:
    """Write a scaled-down model of `family` to `out_dir` and return the folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from swift_core.templates.registry import get_template, official_jinja

    if manager is None:
        from swift_core.plugins import get_plugin_manager

        manager = get_plugin_manager()
    if model_type is None or template is None:
        fam = manager.get("model_families", family)
        if getattr(fam, "remote_code", False):
            raise SwiftError(
                f"family {fam.name!r} needs remote code; tiny models exist for transformers-native families"
            )
        model_type = model_type or fam.model_types[0]
        template = template or fam.template
    tmpl = get_template(template, manager)
    if size not in SIZES:
        raise SwiftError(f"unknown size {size!r}; use one of {', '.join(SIZES)}")
    # Vision-language models write numbers (grounding boxes, OCR): one token per digit, as Qwen's own.
    tokenizer = train_tokenizer(
        tmpl,
        vocab_size=vocab_size,
        seed=seed,
        jinja=official_jinja(tmpl),
        individual_digits=model_type in VISION_CONFIGS,
        extra_special_tokens=GROUNDING_TOKENS if model_type in VISION_CONFIGS else (),
    )
    kwargs: dict[str, Any] = {**SIZES[size], "vocab_size": len(tokenizer), "max_position_embeddings": 2048}
    kwargs.update(ARCH_OVERRIDES.get(model_type, {}))
    for name in ("bos_token", "eos_token", "pad_token"):
        token = getattr(tmpl, name, None) or (tmpl.eos_token if name == "pad_token" else None)
        if token:
            kwargs[f"{name}_id"] = tokenizer.convert_tokens_to_ids(token)
    kwargs["tie_word_embeddings"] = True
    torch.manual_seed(seed)
    if model_type in VISION_CONFIGS:
        from transformers import AutoModelForImageTextToText

        config = _vision_config(model_type, kwargs, tokenizer)
        model = AutoModelForImageTextToText.from_config(config)
    else:
        config = AutoConfig.for_model(model_type, **kwargs)
        model = AutoModelForCausalLM.from_config(config)
    if model.generation_config is not None:
        stops = [tokenizer.convert_tokens_to_ids(t) for t in tmpl.stop if t in tokenizer.get_vocab()]
        model.generation_config.eos_token_id = stops or kwargs.get("eos_token_id")
        model.generation_config.pad_token_id = kwargs.get("pad_token_id")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if model_type in VISION_CONFIGS:
        save_image_processor(out, config)
    return out
