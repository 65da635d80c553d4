"""LLaMA-Pro (block expansion): insert copies of decoder layers and train only them.

`--llamapro_num_new_blocks K` splits the N decoder layers into K groups and inserts after each
group a copy of its last layer whose output projections (attention and MLP outputs: o_proj and
down_proj, or the architecture's equivalents) are zero: a residual block adding zero, so the
model computes exactly what it did before. Everything else is frozen. The result is a plain
transformers model with N + K layers (config.num_hidden_layers, layer_types and every layer_idx
follow), saved in full and reloaded with `from_pretrained`. peft has no LLaMA-Pro.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from swift_core.config.options import options_for
from swift_core.errors import SwiftError
from swift_core.tuners.base import Tuner
from swift_core.tuners.common import (
    OUTPUT_PROJECTIONS,
    check_quantized_base,
    find_decoder_layers,
    set_submodule,
    text_config,
)
from swift_core.tuners.options import LlamaProOptions

logger = logging.getLogger("swift_core")


def insert_positions(num_layers: int, num_new: int) -> list[int]:
    """Indices of the original layers each new block follows: the last layer of each group."""
    return [(i + 1) * num_layers // num_new - 1 for i in range(num_new)]


def zero_output_projections(layer: Any) -> list[str]:
    """Zero the parameters that write the layer's residual branches; return their names."""
    zeroed = []
    for name, param in layer.named_parameters():
        parts = name.split(".")
        # A Linear's weight/bias (`mlp.down_proj.weight`) or a fused parameter (`experts.down_proj`).
        if any(part in OUTPUT_PROJECTIONS for part in parts):
            param.data.zero_()
            zeroed.append(name)
    return zeroed


def _remap_config(config: Any, sources: list[int], old_count: int) -> None:
    """Make per-layer settings follow the new layout; `sources[i]` is the old index of new layer i."""
    config.num_hidden_layers = len(sources)
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, (list, tuple)) and len(layer_types) == old_count:
        config.layer_types = [layer_types[s] for s in sources]
    mlp_only = getattr(config, "mlp_only_layers", None)
    if isinstance(mlp_only, (list, tuple)) and mlp_only:
        config.mlp_only_layers = [i for i, s in enumerate(sources) if s in set(mlp_only)]
    # DeepSeek-V2/V3: the first k layers are dense, the rest MoE; copies of dense layers stay dense.
    first_dense = getattr(config, "first_k_dense_replace", None)
    if isinstance(first_dense, int):
        config.first_k_dense_replace = sum(1 for s in sources if s < first_dense)


def _check_reloads(model: Any) -> None:
    """Build the model from its new config on the meta device and compare parameter shapes."""
    import torch

    try:
        with torch.device("meta"):
            fresh = type(model)(model.config)
    except Exception as exc:  # an architecture that cannot be built on meta: nothing to compare
        logger.debug("llamapro: skipped the reload check: %s", exc)
        return
    expected = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if expected != actual:
        diff = sorted(set(expected.items()) ^ set(actual.items()))[:4]
        raise SwiftError(
            f"tuner 'llamapro': {type(model).__name__} with inserted blocks would not reload from its "
            f"config (its layers depend on their position in a way this tuner does not handle); "
            f"differences: {diff}"
        )


class LlamaProTuner(Tuner):
    name = "llamapro"
    saves_adapter = False
    supports_quantized_base = False

    def check(self, args: Any) -> None:
        check_quantized_base(self, args, "trains full-precision copies of decoder layers")
        blocks = options_for(args, LlamaProOptions).llamapro_num_new_blocks
        if blocks < 1:
            raise SwiftError(f"--llamapro_num_new_blocks must be >= 1, got {blocks}")

    def apply(self, model: Any, args: Any, family: Any) -> Any:
        import torch

        self.check(args)
        layers_name, layers = find_decoder_layers(model)
        old_count = len(layers)
        num_new = options_for(args, LlamaProOptions).llamapro_num_new_blocks
        if num_new > old_count:
            raise SwiftError(
                f"--llamapro_num_new_blocks {num_new} is more than the model's {old_count} decoder layers"
            )
        positions = set(insert_positions(old_count, num_new))
        new_layers, sources, added = [], [], []
        for index, layer in enumerate(layers):
            new_layers.append(layer)
            sources.append(index)
            if index in positions:
                block = copy.deepcopy(layer)
                if not zero_output_projections(block):
                    raise SwiftError(
                        f"tuner 'llamapro': no output projection ({', '.join(sorted(OUTPUT_PROJECTIONS))}) "
                        f"found in {type(layer).__name__}; cannot make an identity block"
                    )
                new_layers.append(block)
                sources.append(index)
                added.append(block)
        set_submodule(model, layers_name, torch.nn.ModuleList(new_layers))
        for index, layer in enumerate(new_layers):
            for module in layer.modules():
                if isinstance(getattr(module, "layer_idx", None), int):
                    module.layer_idx = index
        config = text_config(model)
        _remap_config(config, sources, old_count)
        if config is not model.config and getattr(model.config, "num_hidden_layers", None) == old_count:
            _remap_config(model.config, sources, old_count)
        _check_reloads(model)
        model.requires_grad_(False)
        for block in added:
            block.requires_grad_(True)
        return model

    def load(self, base_model: Any, path: str) -> Any:
        """A checkpoint is the whole expanded model."""
        return type(base_model).from_pretrained(path)

    def merge(self, model: Any) -> Any:
        return model
