"""Arguments of `swift sft` and `swift pt` (ms-swift's spellings accepted as aliases)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swift_core.config.arguments import arg
from swift_core.config.common import DataArguments, ModelArguments


@dataclass(kw_only=True)
class TunerArguments:
    tuner_type: str = arg(
        "lora",
        help="lora, dora, rslora, pissa, olora, lora+, adalora, ia3, vera, boft, fourierft, llamapro, full, freeze",
        aliases=("train_type", "sft_type"),
    )
    use_lora: bool | None = arg(None, help="true: tuner_type lora; false: full (the seed article's spelling)")
    lora_rank: int = arg(8, help="LoRA rank r", aliases=("lora_r",))
    lora_alpha: int = arg(32, help="LoRA alpha")
    lora_dropout: float = arg(0.05, help="LoRA dropout")
    target_modules: list[str] = arg(
        ["all-linear"],
        help="all-linear, attn (the family's attention projections), or module names",
        aliases=("lora_target_modules",),
    )
    modules_to_save: list[str] = arg([], help="Extra modules trained fully and saved with the adapter")
    init_weights: str = arg(
        "true", help="LoRA init: true, gaussian, pissa, olora, ...", aliases=("init_lora_weights",)
    )
    lorap_lr_ratio: float = arg(16.0, help="LoRA+: learning rate of B over A")
    adalora_target_r: int = arg(8, help="AdaLoRA: average target rank")
    adalora_init_r: int = arg(12, help="AdaLoRA: initial rank")
    adalora_tinit: int = arg(0, help="AdaLoRA: steps of warm-up before pruning")
    adalora_tfinal: int = arg(0, help="AdaLoRA: final steps without pruning")
    adalora_deltaT: int = arg(1, help="AdaLoRA: steps between budget updates")
    vera_rank: int = arg(256, help="VeRA rank")
    boft_block_size: int = arg(4, help="BOFT block size")
    fourier_n_frequency: int = arg(
        1000, help="FourierFT: learned spectral coefficients per layer", aliases=("fourierft_n_frequency",)
    )
    freeze_parameters: list[str] = arg([], help="freeze: parameter name prefixes to keep frozen")
    trainable_parameters: list[str] = arg(
        [], help="freeze: parameter name prefixes to train (the rest frozen)"
    )
    freeze_n_layers: int | None = arg(
        None, help="freeze: train only the last N decoder layers (and the head)"
    )
    llamapro_num_new_blocks: int = arg(2, help="LLaMA-Pro: decoder blocks inserted and trained")


@dataclass(kw_only=True)
class QuantArguments:
    quant_method: str | None = arg(None, help="Load-time quantizer for QLoRA, e.g. bnb")
    quant_bits: int | None = arg(None, help="4 or 8", aliases=("quantization_bit",))
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = arg("nf4", help="4-bit data type")
    bnb_4bit_use_double_quant: bool = arg(True, help="Quantize the quantization constants too")


@dataclass(kw_only=True)
class TrainArguments(ModelArguments, DataArguments, TunerArguments, QuantArguments):
    output_dir: str = arg("output", help="Runs go to OUTPUT_DIR/vN-<timestamp>/")
    device: str = arg("auto", help="auto, cpu, cuda, npu, mps")
    torch_dtype: str | None = arg(
        None, help="float32, bfloat16, float16; default: the runtime's", aliases=("dtype",)
    )
    num_train_epochs: float = arg(1.0, help="Epochs (ignored when max_steps > 0)")
    max_steps: int = arg(-1, help="Stop after this many optimizer steps")
    per_device_train_batch_size: int = arg(1, help="Rows per step per device", aliases=("batch_size",))
    per_device_eval_batch_size: int = arg(1, help="Rows per eval step per device")
    gradient_accumulation_steps: int = arg(1, help="Steps accumulated per optimizer step")
    learning_rate: float | None = arg(
        None, help="Peak learning rate; default 1e-4 for adapters, 1e-5 for full"
    )
    lr_scheduler_type: str = arg("cosine", help="linear, cosine, constant, constant_with_warmup, ...")
    warmup_ratio: float = arg(0.0, help="Fraction of steps for warm-up")
    warmup_steps: int = arg(0, help="Warm-up steps (overrides warmup_ratio)")
    weight_decay: float = arg(0.1, help="Weight decay")
    max_grad_norm: float = arg(1.0, help="Gradient clipping")
    packing: bool = arg(False, help="Pack short rows into max_length sequences")
    padding_free: bool = arg(False, help="Concatenate a batch into one row without padding")
    group_by_length: bool = arg(False, help="Batch rows of similar length together")
    gradient_checkpointing: bool = arg(False, help="Recompute activations in backward to save memory")
    split_dataset_ratio: float = arg(0.0, help="Fraction of rows held out for eval loss")
    val_dataset: list[str] = arg([], help="Eval datasets (instead of a split)")
    eval_steps: int | None = arg(None, help="Evaluate every N steps (default: with save_steps)")
    save_steps: int = arg(500, help="Checkpoint every N steps")
    save_total_limit: int | None = arg(None, help="Keep at most N checkpoints")
    logging_steps: int = arg(5, help="Log every N steps")
    resume_from_checkpoint: str | None = arg(
        None, help="A checkpoint folder, or auto (the latest complete one)"
    )
    report_to: list[str] = arg([], help="tensorboard, wandb, ...")
    dataloader_num_workers: int = arg(0, help="Data loader worker processes")
    add_version: bool = arg(True, help="Write to OUTPUT_DIR/vN-<timestamp> (false: OUTPUT_DIR itself)")
