"""The options of the Megatron strategy (light: imported when the CLI builds its flags).

Spelled as ms-swift's `megatron sft` spells them (`--tensor_model_parallel_size`,
`--pipeline_model_parallel_size`), with vLLM's shorter names as aliases; any of the three flags
turns the strategy on.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config.arguments import arg


@dataclass(kw_only=True)
class MegatronOptions:
    megatron: bool | None = arg(
        None,
        help="Train with Megatron-Core through Megatron-Bridge (tensor/pipeline parallel; CUDA, "
        "Python >= 3.12): the HF model is converted, trained and exported back to HF",
    )
    tensor_model_parallel_size: int | None = arg(
        None,
        aliases=("tensor_parallel_size",),
        help="Megatron: split each layer's matrices over this many GPUs (TP; default 1; turns on --megatron)",
    )
    pipeline_model_parallel_size: int | None = arg(
        None,
        aliases=("pipeline_parallel_size",),
        help="Megatron: split the layers into this many pipeline stages (PP; default 1; turns on --megatron)",
    )
