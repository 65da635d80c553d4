"""The built-in tuners' own options (flags of `swift sft|pt|rlhf` while the tuner is installed).

Light on purpose: `swift_core.builtin.tuners` imports this at start-up to describe the tuners.
Names and defaults follow ms-swift and peft (`--lora_rank`, `--adalora_target_r`, ...); a field
declared by several classes (`lora_dropout`) is one flag shared by those tuners.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config.arguments import arg


@dataclass(kw_only=True)
class LoraOptions:
    """LoRA and its variants that differ only in how they scale or initialise (DoRA, rsLoRA, PiSSA, OLoRA)."""

    lora_rank: int = arg(8, help="LoRA rank r", aliases=("lora_r",))
    lora_alpha: int = arg(32, help="LoRA alpha")
    lora_dropout: float = arg(0.05, help="Dropout on the adapter's input")
    init_weights: str = arg(
        "true", help="LoRA init: true, gaussian, pissa, olora, ...", aliases=("init_lora_weights",)
    )


@dataclass(kw_only=True)
class LoraPlusOptions(LoraOptions):
    lorap_lr_ratio: float = arg(16.0, help="LoRA+: learning rate of B over A")


@dataclass(kw_only=True)
class AdaLoraOptions:
    lora_alpha: int = arg(32, help="LoRA alpha")
    lora_dropout: float = arg(0.05, help="Dropout on the adapter's input")
    adalora_target_r: int = arg(8, help="AdaLoRA: average target rank")
    adalora_init_r: int = arg(12, help="AdaLoRA: initial rank")
    adalora_tinit: int = arg(0, help="AdaLoRA: steps of warm-up before pruning")
    adalora_tfinal: int = arg(0, help="AdaLoRA: final steps without pruning")
    adalora_deltaT: int = arg(1, help="AdaLoRA: steps between budget updates")


@dataclass(kw_only=True)
class VeraOptions:
    vera_rank: int = arg(256, help="VeRA rank")
    lora_dropout: float = arg(0.05, help="Dropout on the adapter's input")


@dataclass(kw_only=True)
class BoftOptions:
    boft_block_size: int = arg(4, help="BOFT block size")
    lora_dropout: float = arg(0.05, help="Dropout on the adapter's input")


@dataclass(kw_only=True)
class FourierFTOptions:
    fourier_n_frequency: int = arg(
        1000, help="FourierFT: learned spectral coefficients per layer", aliases=("fourierft_n_frequency",)
    )


@dataclass(kw_only=True)
class FreezeOptions:
    freeze_parameters: list[str] = arg([], help="Parameter name prefixes to keep frozen")
    trainable_parameters: list[str] = arg([], help="Parameter name prefixes to train (the rest frozen)")
    freeze_n_layers: int | None = arg(None, help="Train only the last N decoder layers (and the head)")


@dataclass(kw_only=True)
class LlamaProOptions:
    llamapro_num_new_blocks: int = arg(2, help="LLaMA-Pro: decoder blocks inserted and trained")
