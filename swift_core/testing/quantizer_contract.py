"""The quantizer contract: what every registered `Quantizer` must do.

The pipelines ask the descriptor's `load_time` / `export_time` flags, never the name. For a
load-time quantizer (QLoRA), `swift sft` calls `check(args)` before anything heavy loads, hands
`load_kwargs(args, dtype)` to `from_pretrained`, then `prepare_for_training`:

- the factory makes a `Quantizer`, and the descriptor says when it works (load or export time);
- `check` accepts the bit widths the quantizer supports and refuses others with a `SwiftError`
  (a user's mistake, told before a model loads);
- `load_kwargs` gives `from_pretrained` a `quantization_config` (a transformers quantization
  config);
- with a model folder (`model_dir`) and the library installed: the model loads quantized (some
  weight is stored in fewer than 16 bits), `prepare_for_training` returns a model whose forward is
  finite, and a LoRA adapter on it (plain peft, "all-linear") gets a gradient: QLoRA works.
  Where the library cannot run on the machine, leave `model_dir` out: the load clauses are skipped
  and reported as skipped.

Export-time quantizers (`export`) are not covered yet: the export interface is still being settled.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from swift_core.testing.contract import Checker, ContractReport
from swift_core.testing.tuner_contract import option_defaults

# Bit widths no quantization method uses: `check` must refuse them.
BAD_BITS = (0, 7)


def quantizer_args(descriptor: Any = None, **overrides: Any) -> SimpleNamespace:
    """Arguments for the battery: the descriptor's option defaults, the CPU and float32, then
    `overrides` (a plugin's quantizer passes its own options here)."""
    values = option_defaults(descriptor)
    values.update(
        quant_method=getattr(descriptor, "name", None),
        quant_bits=4,
        device="cpu",
        torch_dtype="float32",
        gradient_checkpointing=False,
    )
    values.update(overrides)
    return SimpleNamespace(**values)


def check_quantizer(
    name: str,
    manager: Any = None,
    *,
    args: Any = None,
    good_bits: Iterable[int] = (4,),
    bad_bits: Iterable[Any] = BAD_BITS,
    model_dir: str | Path | None = None,
) -> ContractReport:
    """Run the quantizer contract on the quantizer registered as `name`; raise `ContractFailure`
    at the first broken clause, else return the report.

    `args`: the arguments (default: `quantizer_args(descriptor)`), with `quant_bits` replaced by
    each of `good_bits` (accepted, the first one used to load) and `bad_bits` (refused).
    `model_dir`: a causal-LM folder to load quantized (e.g. `swift_core.testing.tiny_model`);
    without it the load clauses are skipped.
    """
    from swift_core.testing.managers import builtin_manager

    manager = manager if manager is not None else builtin_manager()
    descriptor = manager.get("quantizers", name)
    origin = f" ({descriptor.distribution})" if descriptor.distribution else ""
    check = Checker(f"quantizer {descriptor.name!r}{origin}")
    args = args if args is not None else quantizer_args(descriptor)
    battery = _QuantizerBattery(check, descriptor, args, tuple(good_bits), tuple(bad_bits))
    battery.run(Path(model_dir) if model_dir is not None else None)
    return check.report


class _QuantizerBattery:
    def __init__(
        self,
        check: Checker,
        descriptor: Any,
        args: Any,
        good_bits: tuple[int, ...],
        bad_bits: tuple[Any, ...],
    ) -> None:
        self.check, self.descriptor, self.args = check, descriptor, args
        self.good_bits, self.bad_bits = good_bits, bad_bits

    def with_bits(self, bits: Any) -> SimpleNamespace:
        return SimpleNamespace(**{**vars(self.args), "quant_bits": bits})

    def run(self, model_dir: Path | None) -> None:
        from swift_core.quantizers.base import Quantizer

        check = self.check
        with check.clause("the factory makes a Quantizer that works at load or export time"):
            self.quantizer = self.descriptor.load()()
            check.require(
                isinstance(self.quantizer, Quantizer),
                f"got {type(self.quantizer).__name__}, not a swift_core.quantizers.Quantizer",
            )
            check.require(
                self.descriptor.load_time or self.descriptor.export_time,
                "the descriptor says neither load_time nor export_time: no pipeline can use it",
            )
        if not self.descriptor.load_time:
            check.skip("load-time clauses", "load_time=False")
            return
        self.checks_bits()
        kwargs = self.load_kwargs()
        if model_dir is None:
            check.skip("the model loads quantized and trains with an adapter", "no model_dir given")
            return
        self.loads_and_trains(model_dir, kwargs)

    def checks_bits(self) -> None:
        from swift_core.errors import SwiftError

        check = self.check
        with check.clause("check accepts the supported bit widths"):
            check.require(self.good_bits, "give at least one supported bit width (good_bits)")
            for bits in self.good_bits:
                self.quantizer.check(self.with_bits(bits))
        with check.clause("check refuses unsupported bit widths with a SwiftError"):
            for bits in self.bad_bits:
                try:
                    self.quantizer.check(self.with_bits(bits))
                except SwiftError:
                    continue
                check.fail(f"check accepted quant_bits={bits!r}")

    def load_kwargs(self) -> dict[str, Any]:
        import torch

        check = self.check
        with check.clause("load_kwargs gives from_pretrained a quantization_config"):
            kwargs = self.quantizer.load_kwargs(self.with_bits(self.good_bits[0]), torch.float32)
            check.require(
                isinstance(kwargs, dict), f"load_kwargs returned {type(kwargs).__name__}, not a dict"
            )
            check.require("quantization_config" in kwargs, f"no quantization_config in {sorted(kwargs)}")
            config = kwargs["quantization_config"]
            try:
                from transformers.utils.quantization_config import QuantizationConfigMixin
            except ImportError:  # an older layout: accept anything transformers can serialise
                QuantizationConfigMixin = None  # noqa: N806
            ok = (
                isinstance(config, QuantizationConfigMixin)
                if QuantizationConfigMixin
                else hasattr(config, "to_dict")
            )
            check.require(
                ok,
                f"quantization_config is a {type(config).__name__}, not a transformers quantization config",
            )
        return kwargs

    def loads_and_trains(self, model_dir: Path, kwargs: dict[str, Any]) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        from swift_core.testing.models import load_model, random_token_batch

        check = self.check
        args = self.with_bits(self.good_bits[0])
        with check.clause("the model loads quantized"):
            model = load_model(model_dir, **kwargs)
            tensors = [*model.parameters(), *model.buffers()]
            check.require(
                any(not t.is_floating_point() or t.element_size() < 2 for t in tensors),
                "every weight is still stored in 16 or 32 bits after loading with the quantization_config",
            )
        with check.clause("prepare_for_training gives a model that trains with an adapter"):
            model = self.quantizer.prepare_for_training(model, args)
            check.require(model is not None, "prepare_for_training returned None")
            ids = random_token_batch(model.config.get_text_config().vocab_size)
            model = get_peft_model(
                model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear")
            )
            model.train()
            out = model(input_ids=ids, labels=ids)
            check.require(
                torch.isfinite(out.logits).all().item(), "the quantized model's logits are not finite"
            )
            check.require(torch.isfinite(out.loss).item(), f"the training loss is {out.loss.item()}")
            out.loss.backward()
            grads = [p.grad for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
            check.require(grads, "peft found no layer to put LoRA on")
            check.require(
                any(g is not None and g.abs().sum().item() > 0 for g in grads),
                "no gradient reaches the LoRA adapter on the quantized model",
            )
