"""A model's size from its config alone: every parameter counted on the meta device.

Building the model on torch's meta device allocates nothing and takes the architecture's own
code, so the count is exact for any family transformers knows (tied embeddings, biases, GQA,
MoE experts), where a formula of hidden size and layers would be right only for the families it
was written for. The linear layers are kept by name for LoRA's trainable-parameter count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError


@dataclass(frozen=True)
class ModelShape:
    total_params: int
    linear: dict[str, tuple[int, int]] = field(default_factory=dict)  # decoder linears: (in, out)
    embedding_params: int = 0  # input embeddings and an untied output head
    hidden: int = 0
    intermediate: int = 0
    layers: int = 0
    vocab: int = 0
    heads: int = 0
    kv_dim: int = 0  # key (= value) width: kv heads x head dim

    def lora_params(self, rank: int, targets: list[str]) -> int:
        """Trainable parameters of LoRA with rank r on the target linears (all-linear: all of them)."""
        chosen = [
            shape
            for name, shape in self.linear.items()
            if "all-linear" in targets
            or any(name.endswith(f".{t}") or name.split(".")[-1] == t for t in targets)
        ]
        return sum(rank * (fan_in + fan_out) for fan_in, fan_out in chosen)

    @property
    def quantizable_params(self) -> int:
        """Weights of the decoder's linear layers: what a 4/8-bit load quantizes."""
        return sum(fan_in * fan_out for fan_in, fan_out in self.linear.values())


def model_shape(config: Any) -> ModelShape:
    import torch
    from torch import nn
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    head = model.get_output_embeddings()
    linear = {
        name: (module.in_features, module.out_features)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and module is not head
    }
    unique = {id(p): p for p in model.parameters()}
    embedding = model.get_input_embeddings().weight.numel()
    if head is not None and head.weight is not model.get_input_embeddings().weight:
        embedding += head.weight.numel()
    heads = int(getattr(text, "num_attention_heads", 0) or 0)
    head_dim = int(getattr(text, "head_dim", 0) or (text.hidden_size // heads if heads else 0))
    kv_heads = int(getattr(text, "num_key_value_heads", 0) or heads)
    return ModelShape(
        total_params=sum(p.numel() for p in unique.values()),
        linear=linear,
        embedding_params=embedding,
        hidden=int(text.hidden_size),
        intermediate=int(getattr(text, "intermediate_size", 0) or 4 * text.hidden_size),
        layers=int(text.num_hidden_layers),
        vocab=int(text.vocab_size),
        heads=heads,
        kv_dim=kv_heads * head_dim,
    )


def load_config(model: str) -> Any:
    """The config of a model folder (the plan needs no weights); a clear error otherwise."""
    from transformers import AutoConfig

    folder = Path(model)
    if not (folder / "config.json").is_file():
        raise SwiftError(
            f"--model {model}: give a folder with a config.json (only the config is read, no weights; "
            "`swift download --model ID` fetches one)"
        )
    try:
        return AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise SwiftError(f"--model {model}: cannot read its config.json: {exc}") from None
