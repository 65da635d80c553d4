"""Tuners that train the model's own weights: full and freeze. Checkpoints are full models."""

from __future__ import annotations

from typing import Any

from swift_core.config.options import options_for
from swift_core.errors import SwiftError, did_you_mean
from swift_core.tuners.base import Tuner
from swift_core.tuners.common import (
    check_quantized_base,
    final_norm,
    find_decoder_layers,
    matches_prefix,
    output_head,
)
from swift_core.tuners.options import FreezeOptions


class _WeightsTuner(Tuner):
    saves_adapter = False
    supports_quantized_base = False

    def check(self, args: Any) -> None:
        check_quantized_base(self, args, "trains the quantized weights themselves")

    def load(self, base_model: Any, path: str) -> Any:
        """A checkpoint is a whole model: load it with the base model's class."""
        return type(base_model).from_pretrained(path)

    def merge(self, model: Any) -> Any:
        return model


class FullTuner(_WeightsTuner):
    name = "full"

    def apply(self, model: Any, args: Any, family: Any) -> Any:
        self.check(args)
        model.requires_grad_(True)
        return model


class FreezeTuner(_WeightsTuner):
    """Train a part of the model.

    `--trainable_parameters P...`: only parameters under these prefixes; `--freeze_parameters
    P...`: everything except these; `--freeze_n_layers N`: the last N decoder layers, the final
    norm and the head. Trainable sets combine (union); frozen prefixes then apply on top.
    """

    name = "freeze"

    def check(self, args: Any) -> None:
        super().check(args)
        options = options_for(args, FreezeOptions)
        n = options.freeze_n_layers
        if not (options.trainable_parameters or options.freeze_parameters or n is not None):
            raise SwiftError(
                "tuner 'freeze' needs --trainable_parameters PREFIX..., --freeze_parameters PREFIX... "
                "or --freeze_n_layers N"
            )
        if n is not None and n < 0:
            raise SwiftError(f"--freeze_n_layers must be >= 0, got {n}")

    def apply(self, model: Any, args: Any, family: Any) -> Any:
        self.check(args)
        options = options_for(args, FreezeOptions)
        names = [name for name, _ in model.named_parameters()]
        for prefix in [*options.trainable_parameters, *options.freeze_parameters]:
            if not any(matches_prefix(name, prefix) for name in names):
                modules = sorted({n.rsplit(".", 1)[0] for n in names})
                raise SwiftError(
                    f"tuner 'freeze': no parameter under {prefix!r}.{did_you_mean(prefix, modules)} "
                    f"Parameter names look like: {', '.join(names[:4])}, ..."
                )
        train_all = not options.trainable_parameters and options.freeze_n_layers is None
        model.requires_grad_(train_all)
        for name, param in model.named_parameters():
            if any(matches_prefix(name, p) for p in options.trainable_parameters):
                param.requires_grad_(True)
        if options.freeze_n_layers:
            _, layers = find_decoder_layers(model)
            n = min(options.freeze_n_layers, len(layers))
            for layer in list(layers)[len(layers) - n :]:
                layer.requires_grad_(True)
            norm = final_norm(model, find_decoder_layers(model)[0])
            for module in (norm, output_head(model)):
                if module is not None:
                    module.requires_grad_(True)
        for name, param in model.named_parameters():
            if any(matches_prefix(name, p) for p in options.freeze_parameters):
                param.requires_grad_(False)
        if not any(p.requires_grad for p in model.parameters()):
            raise SwiftError("tuner 'freeze': these settings leave no parameter to train")
        return model
