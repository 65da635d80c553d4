"""Built-in tuners. Factories are strings: peft and torch load only when a tuner is selected."""

from __future__ import annotations

from swift_core.descriptors import TunerDescriptor
from swift_core.hookspecs import hookimpl
from swift_core.tuners.options import (
    AdaLoraOptions,
    BoftOptions,
    FourierFTOptions,
    FreezeOptions,
    LlamaProOptions,
    LoraOptions,
    LoraPlusOptions,
    VeraOptions,
)

_PEFT = "swift_core.tuners.peft_tuners"

# name, factory, description, aliases
TUNERS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("lora", f"{_PEFT}:LoraTuner", "LoRA: low-rank adapters on the target modules (peft)", ()),
    ("dora", f"{_PEFT}:DoraTuner", "DoRA: LoRA with a trained weight magnitude (peft use_dora)", ()),
    ("rslora", f"{_PEFT}:RsLoraTuner", "rsLoRA: LoRA scaled by alpha/sqrt(r) (peft use_rslora)", ()),
    ("pissa", f"{_PEFT}:PissaTuner", "PiSSA: LoRA initialised from the principal singular vectors", ()),
    ("olora", f"{_PEFT}:OloraTuner", "OLoRA: LoRA initialised by QR decomposition of the weights", ()),
    (
        "lora+",
        f"{_PEFT}:LoraPlusTuner",
        "LoRA+: LoRA whose B matrices learn lorap_lr_ratio times faster",
        ("loraplus",),
    ),
    (
        "adalora",
        f"{_PEFT}:AdaLoraTuner",
        "AdaLoRA: LoRA with SVD ranks pruned to a budget (needs max_steps)",
        (),
    ),
    ("ia3", f"{_PEFT}:IA3Tuner", "IA3: learned scaling vectors on activations (peft)", ()),
    ("vera", f"{_PEFT}:VeraTuner", "VeRA: shared frozen random projections, trained scaling vectors", ()),
    ("boft", f"{_PEFT}:BoftTuner", "BOFT: butterfly orthogonal fine-tuning (peft)", ()),
    (
        "fourierft",
        f"{_PEFT}:FourierFTTuner",
        "FourierFT: trained spectral coefficients of the weight update",
        (),
    ),
    (
        "llamapro",
        "swift_core.tuners.llamapro:LlamaProTuner",
        "LLaMA-Pro: insert identity-initialised decoder blocks and train only them",
        ("llama_pro",),
    ),
    ("full", "swift_core.tuners.full:FullTuner", "Train every weight; checkpoints are full models", ()),
    (
        "freeze",
        "swift_core.tuners.full:FreezeTuner",
        "Train chosen parameters (trainable/freeze prefixes or the last N layers); full checkpoints",
        (),
    ),
)


# Each tuner's options class (tuners not listed take none).
OPTIONS: dict[str, type] = {
    **dict.fromkeys(("lora", "dora", "rslora", "pissa", "olora"), LoraOptions),
    "lora+": LoraPlusOptions,
    "adalora": AdaLoraOptions,
    "vera": VeraOptions,
    "boft": BoftOptions,
    "fourierft": FourierFTOptions,
    "freeze": FreezeOptions,
    "llamapro": LlamaProOptions,
}


@hookimpl
def register_tuners(register):
    for name, factory, description, aliases in TUNERS:
        register(
            TunerDescriptor(
                name=name,
                factory=factory,
                description=description,
                aliases=aliases,
                options=OPTIONS.get(name),
            )
        )
