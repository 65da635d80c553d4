"""Arguments of `swift sft` and `swift pt` (ms-swift's spellings accepted as aliases)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from swift_core.config.arguments import arg
from swift_core.config.common import DataArguments, ModelArguments
from swift_core.config.distributed_args import DistributedArguments


@dataclass(kw_only=True)
class TunerArguments:
    ARG_GROUP: ClassVar[str] = "tuner"

    tuner_type: str = arg(
        "lora",
        help="A tuner plugin: lora, dora, adalora, ia3, full, freeze, ... (the installed ones and their "
        "options are listed below)",
        aliases=("train_type", "sft_type"),
    )
    use_lora: bool | None = arg(None, help="true: tuner_type lora; false: full (the seed article's spelling)")
    target_modules: list[str] = arg(
        ["all-linear"],
        help="all-linear, attn (the family's attention projections), or module names",
        aliases=("lora_target_modules",),
    )
    modules_to_save: list[str] = arg([], help="Extra modules trained fully and saved with the adapter")


@dataclass(kw_only=True)
class QuantArguments:
    ARG_GROUP: ClassVar[str] = "quantization"

    quant_method: str | None = arg(None, help="Load-time quantizer for QLoRA, e.g. bnb")
    quant_bits: int | None = arg(
        None, help="Bits of the quantized weights, e.g. 4 or 8", aliases=("quantization_bit",)
    )


@dataclass(kw_only=True)
class VisionArguments:
    """Images of vision-language families (swift_core.multimodal); ignored for text families."""

    ARG_GROUP: ClassVar[str] = "vision"

    max_pixels: int | None = arg(
        None,
        help="Largest image area (pixels) after resizing; bounds visual tokens and memory. Default: the model's",
    )
    min_pixels: int | None = arg(
        None, help="Smallest image area (pixels) after resizing. Default: the model's"
    )


@dataclass(kw_only=True)
class FreezeArguments:
    ARG_GROUP: ClassVar[str] = "vision"

    freeze_vit: bool | None = arg(
        None, help="Keep the vision tower frozen; default: true with an adapter tuner (LoRA)"
    )
    freeze_aligner: bool | None = arg(
        None, help="Keep the aligner (vision-to-text projection) frozen; default: as --freeze_vit"
    )
    freeze_llm: bool = arg(False, help="Keep the language model frozen (train only vision parts)")


@dataclass(kw_only=True)
class TrainArguments(
    ModelArguments,
    DataArguments,
    TunerArguments,
    QuantArguments,
    VisionArguments,
    FreezeArguments,
    DistributedArguments,
):
    ARG_GROUP: ClassVar[str] = "training"
    # Capabilities whose options these commands take (swift_core.config.options).
    CAPABILITY_KINDS: ClassVar[tuple[str, ...]] = ("tuners", "quantizers:load_time", "strategies")

    output_dir: str = arg("output", help="Runs go to OUTPUT_DIR/vN-<timestamp>/", group="output")
    device: str = arg(
        "auto", help="A runtime plugin: auto (the best available), cpu, cuda, rocm, npu, mps (see swift env)"
    )
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
    group_by_length: bool | None = arg(
        None,
        help="Batch rows of similar length together (default: on for swift sft/pt with padded batches, "
        "where it cuts padding; off for rlhf)",
    )
    max_tokens_per_batch: int | None = arg(
        None,
        help="Form each step from as many rows as fit this many padded tokens (rows x longest) instead of "
        "a fixed row count; bounds a step's activation memory",
    )
    chunked_loss: bool = arg(
        True,
        help="Compute the LM loss from hidden states in chunks at trained positions only (no full logits)",
    )
    gradient_checkpointing: bool = arg(False, help="Recompute activations in backward to save memory")
    split_dataset_ratio: float = arg(0.0, help="Fraction of rows held out for eval loss", group="data")
    val_dataset: list[str] = arg([], help="Eval datasets (instead of a split)", group="data")
    eval_steps: int | None = arg(None, help="Evaluate every N steps (default: with save_steps)")
    save_steps: int = arg(500, help="Checkpoint every N steps", group="output")
    save_total_limit: int | None = arg(None, help="Keep at most N checkpoints", group="output")
    logging_steps: int = arg(5, help="Log every N steps", group="output")
    resume_from_checkpoint: str | None = arg(
        None,
        help="A checkpoint folder, or auto (the latest complete one)",
        group="output",
    )
    report_to: list[str] = arg([], help="tensorboard, wandb, ...", group="output")
    dataloader_num_workers: int = arg(0, help="Data loader worker processes")
    add_version: bool = arg(
        True, help="Write to OUTPUT_DIR/vN-<timestamp> (false: OUTPUT_DIR itself)", group="output"
    )
