"""The three steps through Megatron-Bridge's public API: convert the HF model, train, export to HF.

Names checked against NVIDIA-NeMo/Megatron-Bridge (main, 2026-08): `AutoBridge.from_hf_pretrained`
and `to_megatron_provider(load_weights=False)`, the provider's `tensor_model_parallel_size`,
`pipeline_model_parallel_size` and `seq_length`; `ConfigContainer` with `TrainingConfig`,
`CheckpointConfig` (`pretrained_checkpoint` takes a Hugging Face model folder: the weights are
converted as the model is built, split TP x PP), `LoggerConfig`, `TokenizerConfig`,
`RNGConfig`, `DirectHFSFTDatasetConfig` over a local JSON file of chat rows
(`HFDatasetSourceConfig`, `ChatSFTPreprocessingConfig`: the chat template of the HF tokenizer,
loss on assistant turns, or on every token for `pt`), optimizer and scheduler from
`distributed_fused_adam_with_cosine_annealing`, `LoRA` for adapters; `finetune(config,
forward_step)`; then `export_adapter_ckpt` (a peft folder) or `export_ckpt` (a full HF folder).
Every import of megatron happens inside these functions: the plugin loads without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Megatron-Core's names for the projections peft calls q/k/v/o and gate/up/down.
MEGATRON_LINEARS = ("linear_qkv", "linear_proj", "linear_fc1", "linear_fc2")
ATTENTION_LINEARS = ("linear_qkv", "linear_proj")


@dataclass(frozen=True)
class LoraSpec:
    rank: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...]


@dataclass(frozen=True)
class MegatronPlan:
    """Everything one run asks of Megatron-Bridge, decided by Swift before any of it is imported."""

    model_dir: str
    data_file: str
    checkpoint_dir: str  # Megatron's own (distributed) checkpoints
    export_dir: str  # the Hugging Face folder written at the end (peft adapter or full model)
    tensor_parallel: int
    pipeline_parallel: int
    seq_length: int
    micro_batch_size: int
    global_batch_size: int
    train_iters: int
    learning_rate: float
    warmup_iters: int
    weight_decay: float
    clip_grad: float
    save_interval: int
    log_interval: int
    seed: int
    loss_mode: str  # "assistant" (sft) or "full" (pt)
    lora: LoraSpec | None
    trust_remote_code: bool = False
    bf16: bool = True


def convert(plan: MegatronPlan) -> tuple[Any, Any]:
    """The bridge for the HF folder and a Megatron-Core model provider split TP x PP."""
    from megatron.bridge import AutoBridge

    bridge = AutoBridge.from_hf_pretrained(plan.model_dir, trust_remote_code=plan.trust_remote_code)
    # Weights come from `checkpoint.pretrained_checkpoint` (the same HF folder) when training starts.
    provider = bridge.to_megatron_provider(load_weights=False)
    provider.tensor_model_parallel_size = plan.tensor_parallel
    provider.pipeline_model_parallel_size = plan.pipeline_parallel
    provider.seq_length = plan.seq_length
    return bridge, provider


def config(plan: MegatronPlan, provider: Any) -> Any:
    """Megatron-Bridge's ConfigContainer for the plan."""
    from megatron.bridge.data.builders import (
        ChatSFTPreprocessingConfig,
        DirectHFSFTDatasetConfig,
        HFDatasetSourceConfig,
    )
    from megatron.bridge.peft.lora import LoRA
    from megatron.bridge.recipes.utils.optimizer_utils import distributed_fused_adam_with_cosine_annealing
    from megatron.bridge.training.config import (
        CheckpointConfig,
        ConfigContainer,
        LoggerConfig,
        RNGConfig,
        TokenizerConfig,
        TrainingConfig,
    )

    optimizer, scheduler = distributed_fused_adam_with_cosine_annealing(
        precision="bf16-mixed" if plan.bf16 else "fp32",
        lr_warmup_iters=plan.warmup_iters,
        lr_decay_iters=plan.train_iters,
        weight_decay=plan.weight_decay,
        max_lr=plan.learning_rate,
        min_lr=0.0,
        clip_grad=plan.clip_grad,
    )
    dataset = DirectHFSFTDatasetConfig(
        seq_length=plan.seq_length,
        source=HFDatasetSourceConfig(
            path_or_dataset="json", load_kwargs={"data_files": plan.data_file}, split="train"
        ),
        preprocessing=ChatSFTPreprocessingConfig(loss_mode=plan.loss_mode),
        do_validation=False,
        do_test=False,
    )
    peft = None
    if plan.lora is not None:
        peft = LoRA(
            target_modules=list(plan.lora.target_modules),
            dim=plan.lora.rank,
            alpha=plan.lora.alpha,
            dropout=plan.lora.dropout,
        )
    return ConfigContainer(
        model=provider,
        train=TrainingConfig(
            train_iters=plan.train_iters,
            global_batch_size=plan.global_batch_size,
            micro_batch_size=plan.micro_batch_size,
        ),
        optimizer=optimizer,
        scheduler=scheduler,
        dataset=dataset,
        logger=LoggerConfig(log_interval=plan.log_interval),
        tokenizer=TokenizerConfig(tokenizer_type="HuggingFaceTokenizer", tokenizer_model=plan.model_dir),
        checkpoint=CheckpointConfig(
            pretrained_checkpoint=plan.model_dir,
            save=plan.checkpoint_dir,
            save_interval=plan.save_interval,
        ),
        rng=RNGConfig(seed=plan.seed),
        mixed_precision="bf16_mixed" if plan.bf16 else None,
        peft=peft,
    )


def train(plan: MegatronPlan, container: Any) -> None:
    """Megatron-Bridge's fine-tuning loop (every rank; the bridge builds the TP/PP/DP groups)."""
    from megatron.bridge.training.finetune import finetune
    from megatron.bridge.training.gpt_step import forward_step

    finetune(container, forward_step)


def export(plan: MegatronPlan, bridge: Any) -> Path:
    """The trained Megatron checkpoint as a Hugging Face folder (main process only)."""
    out = Path(plan.export_dir)
    if plan.lora is not None:
        bridge.export_adapter_ckpt(plan.checkpoint_dir, str(out))  # adapter_config.json + safetensors
    else:
        bridge.export_ckpt(plan.checkpoint_dir, str(out))  # config, tokenizer, weights
    return out


def megatron_targets(target_modules: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Swift's `--target_modules` in Megatron-Core's module names (its fused qkv and fc1)."""
    words = list(target_modules) or ["all-linear"]
    if words in (["all-linear"], ["all"]):
        return MEGATRON_LINEARS
    if words == ["attn"]:
        return ATTENTION_LINEARS
    peft_to_mcore = {
        "q_proj": "linear_qkv", "k_proj": "linear_qkv", "v_proj": "linear_qkv", "o_proj": "linear_proj",
        "gate_proj": "linear_fc1", "up_proj": "linear_fc1", "down_proj": "linear_fc2",
    }  # fmt: skip
    out: list[str] = []
    for word in words:
        name = peft_to_mcore.get(word, word)
        if name not in out:
            out.append(name)
    return tuple(out)
