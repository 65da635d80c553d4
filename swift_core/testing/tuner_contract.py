"""The tuner contract: what every registered `Tuner` (built-in or a plugin's) must do.

One battery runs over every tuner, as peft's common tester runs over every method: the pipelines
never branch on a tuner's name, so each promise below is something `swift sft`, `swift infer
--adapters` or `swift export --merge_lora` relies on for any tuner:

- the factory makes a `Tuner`; `check` accepts sane arguments;
- `check` refuses a load-time quantized base (`quant_bits`) exactly when `supports_quantized_base`
  is False (QLoRA is refused before any model loads, not halfway through);
- `apply` leaves some parameters trainable and the rest frozen; training every weight is only
  allowed for a tuner that saves full weights (`saves_adapter=False`);
- `optimizer_param_groups`, when given, hold each trainable parameter once and no frozen one;
- one optimizer step (with the tuner's groups and callbacks, as the trainer runs them) changes
  only trainable parameters, and changes the model's output;
- saving (`model.save_pretrained`, what the trainer calls; a tuner's own `save(model, folder)`
  where it has one) leaves the model as it was and writes what `saves_adapter` says: a PEFT adapter
  (`adapter_config.json`), or a full Hugging Face checkpoint (`config.json`);
- `load` on a fresh base reproduces the trained logits, and so does the library a user (or an
  inference engine) would use on its own: `PeftModel.from_pretrained` for an adapter, which must
  leave the base's weights as they were (other adapters and merges share that base),
  `AutoModelForCausalLM.from_pretrained` for full weights;
- `merge` gives a model of the base's own class, without adapter weights, with the same logits.

Arguments are a plain namespace (`tuner_args`) with the fields the tuners read, at sizes fit for a
tiny model; tuners read their options with `options_for(args, TheirOptions)`, which takes these
attributes and defaults the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from swift_core.testing.contract import Checker, ContractReport


def _test_sized_args() -> dict[str, Any]:
    """Arguments every built-in tuner accepts on a 2-layer, hidden-64 model (fresh lists each call)."""
    return {
        # shared by the LoRA family and most peft tuners
        "lora_rank": 8,
        "lora_alpha": 32,
        "lora_dropout": 0.0,  # logits must be reproducible to compare reloads
        "init_weights": "true",
        "target_modules": ["all-linear"],
        "modules_to_save": [],
        "lorap_lr_ratio": 16.0,
        # AdaLoRA budgets its ranks over a known number of steps
        "adalora_init_r": 12,
        "adalora_target_r": 8,
        "adalora_tinit": 0,
        "adalora_tfinal": 0,
        "adalora_deltaT": 1,
        "max_steps": 4,
        # sized down for hidden 64
        "vera_rank": 16,
        "boft_block_size": 4,
        "fourier_n_frequency": 64,
        "llamapro_num_new_blocks": 1,
        # freeze: the last layer (with the final norm and the head)
        "freeze_parameters": [],
        "trainable_parameters": [],
        "freeze_n_layers": 1,
        # training and quantization
        "learning_rate": 1e-2,
        "weight_decay": 0.0,
        "gradient_checkpointing": False,
        "quant_method": None,
        "quant_bits": None,
        "device": "cpu",
        "torch_dtype": "float32",
    }


def option_defaults(descriptor: Any) -> dict[str, Any]:
    """The defaults of a descriptor's options dataclass (`descriptor.options`), if it has one."""
    options = getattr(descriptor, "options", None)
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        return {}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(options):
        if not f.init:
            continue
        if f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
        elif f.default is not dataclasses.MISSING:
            values[f.name] = f.default
    return values


def tuner_args(descriptor: Any = None, **overrides: Any) -> SimpleNamespace:
    """Arguments for the battery: the descriptor's option defaults, then the test sizes above,
    then `overrides` (a plugin's tuner passes its own options here)."""
    values = option_defaults(descriptor)
    values.update(_test_sized_args())
    values["tuner_type"] = getattr(descriptor, "name", None)
    values.update(overrides)
    return SimpleNamespace(**values)


def save_checkpoint(tuner: Any, model: Any, folder: str | Path) -> None:
    """Save as training does: the tuner's own `save(model, folder)` where it has one, else
    `model.save_pretrained(folder)` (what transformers' Trainer calls in one process)."""
    save = getattr(tuner, "save", None)
    if callable(save):
        save(model, str(folder))
    else:
        model.save_pretrained(str(folder))


def check_tuner(
    name: str,
    manager: Any = None,
    *,
    model_dir: str | Path | None = None,
    family: str | None = "qwen2_5",
    args: Any = None,
    lr: float = 1e-2,
    atol: float = 1e-5,
    merge_atol: float = 1e-4,
    work_dir: str | Path | None = None,
) -> ContractReport:
    """Run the tuner contract on the tuner registered as `name`; raise `ContractFailure` at the
    first broken clause, else return the report.

    `manager`: the plugin manager that registers the tuner (default: the built-ins only).
    `model_dir`: a causal-LM folder to train (default: a tiny Qwen2 built in `work_dir`; pass one
    built once per session to save time). `family`: the model family handed to `apply` (None for
    none). `args`: the arguments (default: `tuner_args(descriptor)`). `work_dir`: where checkpoints
    go (default: a temporary folder, removed afterwards).
    """
    from swift_core.testing.managers import builtin_manager

    manager = manager if manager is not None else builtin_manager()
    descriptor = manager.get("tuners", name)
    origin = f" ({descriptor.distribution})" if descriptor.distribution else ""
    check = Checker(f"tuner {descriptor.name!r}{origin}")
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="swift-tuner-contract-"))
        work = Path(work_dir)
        if model_dir is None:
            from swift_core.testing.models import tiny_model

            model_dir = tiny_model(work / "base")
        fam = None
        if family is not None and family in manager.registry("model_families"):
            fam = manager.get("model_families", family)
        _TunerBattery(
            check,
            descriptor,
            Path(model_dir),
            fam,
            args if args is not None else tuner_args(descriptor),
            work,
            lr=lr,
            atol=atol,
            merge_atol=merge_atol,
        ).run()
    return check.report


class _TunerBattery:
    """The clauses, in the order training, saving, reloading and merging happen."""

    def __init__(
        self,
        check: Checker,
        descriptor: Any,
        model_dir: Path,
        family: Any,
        args: Any,
        work: Path,
        *,
        lr: float,
        atol: float,
        merge_atol: float,
    ) -> None:
        self.check, self.descriptor, self.model_dir = check, descriptor, model_dir
        self.family, self.args, self.work = family, args, work
        self.lr, self.atol, self.merge_atol = lr, atol, merge_atol

    # -- helpers -------------------------------------------------------------------------------------
    def fresh_base(self) -> Any:
        from swift_core.testing.models import load_model

        return load_model(self.model_dir)

    @staticmethod
    def logits(model: Any, ids: Any) -> Any:
        import torch

        model.eval()
        with torch.no_grad():
            return model(input_ids=ids).logits.float()

    def close(self, actual: Any, expected: Any, atol: float, what: str) -> None:
        import torch

        diff = (actual - expected).abs().max().item() if actual.shape == expected.shape else None
        self.check.require(
            diff is not None and torch.allclose(actual, expected, atol=atol),
            f"{what}: logits differ (max |diff| {diff}, tolerance {atol})"
            if diff is not None
            else f"{what}: logits of shape {tuple(actual.shape)}, expected {tuple(expected.shape)}",
        )

    # -- the battery ---------------------------------------------------------------------------------
    def run(self) -> None:
        from swift_core.testing.models import random_token_batch

        check = self.check
        tuner = self.make_tuner()
        self.quantized_base(tuner)
        base = self.fresh_base()
        self.ids = random_token_batch(base.config.get_text_config().vocab_size)
        self.base_logits = self.logits(base, self.ids)
        self.base_keys = set(base.state_dict())
        self.base_class = type(base)
        del base

        with check.clause("apply leaves some parameters trainable and the rest frozen"):
            model = tuner.apply(self.fresh_base(), self.args, self.family)
            trainable = [n for n, p in model.named_parameters() if p.requires_grad]
            frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
            check.require(trainable, "no parameter is trainable after apply")
            check.require(
                frozen or not tuner.saves_adapter,
                "every parameter is trainable, but saves_adapter=True: an adapter checkpoint would "
                "lose the trained base weights",
            )
        self.param_groups(tuner, model)
        trained = self.optimizer_step(tuner, model, trainable)
        folder = self.saved(tuner, model, trainable, trained)
        self.reloads(tuner, folder, trained)
        self.merges(tuner, model, trained)

    def make_tuner(self) -> Any:
        from swift_core.tuners.base import Tuner

        check = self.check
        with check.clause("the factory makes a Tuner"):
            tuner = self.descriptor.load()()
            check.require(
                isinstance(tuner, Tuner), f"got {type(tuner).__name__}, not a swift_core.tuners.Tuner"
            )
            for flag in ("saves_adapter", "supports_quantized_base"):
                value = getattr(tuner, flag)
                check.require(isinstance(value, bool), f"{flag} must be a bool, got {value!r}")
        with check.clause("check accepts the test arguments"):
            tuner.check(self.args)
        return tuner

    def quantized_base(self, tuner: Any) -> None:
        from swift_core.errors import SwiftError

        check = self.check
        with check.clause("check refuses a quantized base exactly when supports_quantized_base is False"):
            quantized = SimpleNamespace(**{**vars(self.args), "quant_method": "bnb", "quant_bits": 4})
            try:
                tuner.check(quantized)
            except SwiftError as exc:
                check.require(
                    not tuner.supports_quantized_base,
                    f"supports_quantized_base=True, but check refused quant_bits=4: {exc}",
                )
                return
            check.require(
                tuner.supports_quantized_base,
                "supports_quantized_base=False, but check accepted quant_bits=4 (it must raise SwiftError "
                "before any model loads)",
            )

    def param_groups(self, tuner: Any, model: Any) -> None:
        check = self.check
        with check.clause("optimizer_param_groups hold each trainable parameter once and no frozen one"):
            groups = tuner.optimizer_param_groups(model, self.args)
            if groups is None:
                return
            seen: dict[int, int] = {}
            for group in groups:
                for param in group["params"]:
                    seen[id(param)] = seen.get(id(param), 0) + 1
            names = {id(p): n for n, p in model.named_parameters()}
            trainable = {id(p) for p in model.parameters() if p.requires_grad}
            twice = [names.get(i, "?") for i, count in seen.items() if count > 1]
            frozen = [names.get(i, "?") for i in seen if i not in trainable]
            missing = [names[i] for i in trainable if i not in seen]
            check.require(not twice, f"parameters in more than one group: {twice[:3]}")
            check.require(not frozen, f"frozen (or foreign) parameters in the groups: {frozen[:3]}")
            check.require(not missing, f"trainable parameters in no group: {missing[:3]}")

    def optimizer_step(self, tuner: Any, model: Any, trainable: list[str]) -> Any:
        import torch

        check = self.check
        with check.clause("one optimizer step changes only trainable parameters"):
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            groups = tuner.optimizer_param_groups(model, self.args)
            params = groups if groups is not None else [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)
            callbacks = tuner.callbacks(model, self.args)
            model.train()
            loss = model(input_ids=self.ids, labels=self.ids).loss
            check.require(torch.isfinite(loss).item(), f"the training loss is {loss.item()}")
            loss.backward()
            optimizer.step()
            state = SimpleNamespace(global_step=0)  # steps finished before this one, as in Trainer
            for callback in callbacks:
                callback.on_optimizer_step(self.args, state, None, model=model)
            optimizer.zero_grad()
            after = dict(model.named_parameters())
            changed = {n for n, p in after.items() if n in before and not torch.equal(p.detach(), before[n])}
            frozen_changed = sorted(changed - set(trainable))
            check.require(not frozen_changed, f"frozen parameters changed: {frozen_changed[:3]}")
            check.require(changed, f"no trainable parameter changed ({len(trainable)} trainable)")
        with check.clause("training changes the model's output"):
            trained = self.logits(model, self.ids)
            check.require(
                not torch.allclose(trained, self.base_logits, atol=self.atol),
                "the logits after an optimizer step equal the base model's: the trained parameters "
                "do not reach the output",
            )
        return trained

    def saved(self, tuner: Any, model: Any, trainable: list[str], trained: Any) -> Path:
        check = self.check
        folder = self.work / "checkpoint"
        with check.clause("saving leaves the model as it was"):
            save_checkpoint(tuner, model, folder)
            now = [n for n, p in model.named_parameters() if p.requires_grad]
            check.require(now == trainable, "saving changed which parameters are trainable")
            self.close(self.logits(model, self.ids), trained, 0.0, "after saving")
        with check.clause("the checkpoint is what saves_adapter says"):
            has_adapter = (folder / "adapter_config.json").exists()
            if tuner.saves_adapter:
                check.require(has_adapter, f"saves_adapter=True, but {folder} has no adapter_config.json")
            else:
                check.require(not has_adapter, f"saves_adapter=False, but {folder} holds an adapter")
                check.require(
                    (folder / "config.json").exists(),
                    f"saves_adapter=False, but {folder} has no config.json (a full checkpoint)",
                )
        return folder

    def reloads(self, tuner: Any, folder: Path, trained: Any) -> None:
        check = self.check
        with check.clause("load on a fresh base reproduces the trained logits"):
            reloaded = tuner.load(self.fresh_base(), str(folder))
            self.close(self.logits(reloaded, self.ids), trained, self.atol, "tuner.load")
        if tuner.saves_adapter:
            import torch
            from peft import PeftModel

            with check.clause("plain peft loads the adapter and leaves the base weights as they were"):
                base = self.fresh_base()
                # peft keeps the base's parameter objects under its wrappers: compare them by identity
                # (an adapter that must be re-derived from the base, as PiSSA's, rewrites them).
                before = {id(p): p.detach().clone() for p in base.parameters()}
                plain = PeftModel.from_pretrained(base, str(folder))
                self.close(self.logits(plain, self.ids), trained, self.atol, "PeftModel.from_pretrained")
                rewritten = [
                    n
                    for n, p in plain.named_parameters()
                    if id(p) in before and not torch.equal(p, before[id(p)])
                ]
                check.require(not rewritten, f"loading the adapter rewrote base weights: {rewritten[:3]}")
        else:
            from transformers import AutoModelForCausalLM

            with check.clause("transformers loads the full checkpoint"):
                plain = AutoModelForCausalLM.from_pretrained(folder)
                self.close(self.logits(plain, self.ids), trained, self.atol, "AutoModelForCausalLM")

    def merges(self, tuner: Any, model: Any, trained: Any) -> None:
        check = self.check
        with check.clause("merge gives a plain model with the same logits"):
            merged = tuner.merge(model)
            check.require(
                type(merged) is self.base_class,
                f"merge returned a {type(merged).__name__}, not the base's {self.base_class.__name__}",
            )
            if tuner.saves_adapter:
                extra = sorted(set(merged.state_dict()) - self.base_keys)
                check.require(not extra, f"the merged model still holds adapter weights: {extra[:3]}")
            self.close(self.logits(merged, self.ids), trained, self.merge_atol, "the merged model")
