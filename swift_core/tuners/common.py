"""Helpers shared by the tuners: target modules, decoder layers, the quantized-base check.

Imported only when a tuner is selected; torch is imported inside the functions that need it.
"""

from __future__ import annotations

from typing import Any

from swift_core.errors import SwiftError, did_you_mean

# The tuners that can train on a load-time quantized base (QLoRA and friends), for messages.
QUANTIZED_BASE_TUNERS = ("lora", "dora", "rslora", "lora+", "adalora", "ia3", "vera", "boft")

# Names of the layers that write a decoder block's residual branches back (attention output
# and MLP output) across the common architectures: Llama/Qwen/Mistral (o_proj, down_proj),
# fused MoE experts (down_proj parameters), GPT-2 (c_proj), Falcon/GLM (dense, dense_4h_to_h),
# Phi-2 (dense, fc2), InternLM2 (wo, w2), Mixtral (w2), BLOOM/OPT-style (out_proj, fc2).
OUTPUT_PROJECTIONS = frozenset(
    {"o_proj", "down_proj", "out_proj", "dense", "fc2", "c_proj", "w2", "wo", "dense_4h_to_h"}
)
# Feed-forward output layers: IA3 scales their input (the intermediate activation) instead of
# their output.
FEEDFORWARD_OUTPUTS = frozenset({"down_proj", "w2", "fc2", "dense_4h_to_h"})

SPECIAL_TARGETS = ("all-linear", "attn")

# transformers' sequence-classification heads (a reward model's `score`): trained whole, never
# adapted; peft's SEQ_CLS task saves them with the adapter (modules_to_save).
CLASSIFIER_HEADS = ("score", "classifier")


def is_sequence_classifier(model: Any) -> bool:
    """A `*ForSequenceClassification` model (e.g. a reward model), possibly wrapped by peft."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(base).__name__.endswith("ForSequenceClassification")


def peft_task_type(model: Any) -> str:
    """peft's task for this model: SEQ_CLS keeps the classifier head trainable and saved."""
    return "SEQ_CLS" if is_sequence_classifier(model) else "CAUSAL_LM"


def output_head(model: Any) -> Any:
    """The module that produces the model's outputs: the LM head, or the classifier head."""
    if is_sequence_classifier(model):
        return next((getattr(model, name) for name in CLASSIFIER_HEADS if hasattr(model, name)), None)
    return model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None


def check_quantized_base(tuner: Any, args: Any, reason: str) -> None:
    """Refuse --quant_bits with a tuner that cannot train on a quantized base."""
    bits = getattr(args, "quant_bits", None)
    if bits and not tuner.supports_quantized_base:
        raise SwiftError(
            f"--quant_bits {bits} needs an adapter tuner ({', '.join(QUANTIZED_BASE_TUNERS)}); "
            f"tuner {tuner.name!r} {reason}"
        )


def text_config(model: Any) -> Any:
    config = model.config
    get = getattr(config, "get_text_config", None)
    return get() if callable(get) else config


def linear_module_names(model: Any) -> list[str]:
    """Leaf names of the linear layers peft can adapt, without the output head (as peft's all-linear)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    head = output_head(model)
    names = set()
    for name, module in model.named_modules():
        if module is head or not name:
            continue
        if isinstance(module, (torch.nn.Linear, Conv1D)):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def _module_exists(model: Any, target: str) -> bool:
    # peft's rule for a list of names: the full module name, or its last dotted components.
    return any(name == target or name.endswith("." + target) for name, _ in model.named_modules())


def resolve_target_modules(model: Any, args: Any, family: Any, tuner_name: str = "") -> str | list[str]:
    """`--target_modules` as peft takes it.

    `all-linear` is the family's `all_linear_modules` (else peft's own "all-linear"), `attn` the
    family's `lora_target_modules`; other entries are module names and must exist in the model.
    """
    requested = list(getattr(args, "target_modules", None) or ["all-linear"])
    label = f"tuner {tuner_name!r}: " if tuner_name else ""
    if requested == ["all-linear"] and not (family is not None and family.all_linear_modules):
        return "all-linear"
    targets: list[str] = []
    for item in requested:
        if item == "all-linear":
            names = (
                list(family.all_linear_modules) if family is not None and family.all_linear_modules else []
            )
            targets += names or linear_module_names(model)
        elif item == "attn":
            if family is None or not family.lora_target_modules:
                raise SwiftError(
                    f"{label}--target_modules attn needs a known model family with attention "
                    "projections; name the modules (e.g. --target_modules q_proj v_proj) or use all-linear"
                )
            targets += list(family.lora_target_modules)
        else:
            if not _module_exists(model, item):
                available = linear_module_names(model)
                raise SwiftError(
                    f"{label}target module {item!r} is not in the model.{did_you_mean(item, available)} "
                    f"Its linear layers are: {', '.join(available)} "
                    f"(or use {' / '.join(SPECIAL_TARGETS)})"
                )
            targets.append(item)
    # A family lists names for all its variants; keep those this model has, in order.
    present = [t for t in dict.fromkeys(targets) if _module_exists(model, t)]
    if not present:
        raise SwiftError(
            f"{label}none of the target modules {', '.join(dict.fromkeys(targets))} is in the model; "
            f"its linear layers are: {', '.join(linear_module_names(model))}"
        )
    return present


def find_decoder_layers(model: Any) -> tuple[str, Any]:
    """The dotted name and ModuleList of the model's decoder blocks."""
    import torch

    expected = getattr(text_config(model), "num_hidden_layers", None)
    candidates = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        if expected is not None and len(module) != expected:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        candidates.append((name, module))
    if not candidates:
        raise SwiftError(
            f"cannot find the decoder layers of {type(model).__name__} "
            f"(a ModuleList of num_hidden_layers={expected} blocks)"
        )
    # The language model's blocks: prefer a list called layers/h/blocks, then the shortest path.
    candidates.sort(
        key=lambda c: (c[0].rsplit(".", 1)[-1] not in ("layers", "h", "blocks", "layer"), len(c[0]))
    )
    return candidates[0]


def get_submodule(model: Any, name: str) -> Any:
    return model.get_submodule(name) if name else model


def set_submodule(model: Any, name: str, module: Any) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(get_submodule(model, parent_name), attr, module)


def final_norm(model: Any, layers_name: str) -> Any:
    """The norm after the last decoder layer (a sibling of the layer list), or None."""
    parent = get_submodule(model, layers_name.rpartition(".")[0])
    for attr in ("norm", "final_layernorm", "ln_f", "final_norm", "norm_f"):
        module = getattr(parent, attr, None)
        if module is not None:
            return module
    return None


def matches_prefix(name: str, prefix: str) -> bool:
    """Whether parameter `name` is `prefix` or lies under it (dotted components, not characters)."""
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")
