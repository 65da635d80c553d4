"""The contract batteries of `swift_core.testing` over every built-in tuner and alignment loss.

Parametrized over the registry, so a newly registered built-in is covered without editing this
file; the example third-party tuner and loss (tests/fixtures) must pass the same batteries. Each
battery is also run on deliberately broken fakes, which it must reject: a battery that cannot
fail proves nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from swift_core.descriptors import AlignmentLossDescriptor, QuantizerDescriptor, TunerDescriptor
from swift_core.hookspecs import hookimpl
from swift_core.testing import (
    ContractFailure,
    builtin_manager,
    check_alignment_loss,
    check_quantizer,
    check_tuner,
    one_thread,
    plugin_manager,
    plugin_source,
)

# Read at collection time: registering a built-in adds its test case.
_BUILTINS = builtin_manager()
TUNERS = _BUILTINS.registry("tuners").names()
LOSSES = _BUILTINS.registry("alignment_losses").names()


@pytest.fixture(scope="module")
def manager():
    return builtin_manager()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from swift_core.testing import tiny_model

    return tiny_model(tmp_path_factory.mktemp("contract") / "qwen")


@pytest.fixture(autouse=True)
def _one_thread():
    pytest.importorskip("torch")
    with one_thread():
        yield


# -- the built-ins and the example plugins keep the contracts ---------------------------------------


@pytest.mark.parametrize("name", TUNERS)
def test_builtin_tuner_keeps_the_contract(name, manager, model_dir, tmp_path):
    report = check_tuner(name, manager, model_dir=model_dir, work_dir=tmp_path)
    assert "merge gives a plain model with the same logits" in report.passed


@pytest.mark.parametrize("name", LOSSES)
def test_builtin_alignment_loss_keeps_the_contract(name, manager):
    report = check_alignment_loss(name, manager)
    follows = (
        "the loss falls as the chosen answers get likelier and the rejected ones less",
        "the loss falls as positive-advantage completions get likelier, negative ones less",  # online RL
    )
    assert any(clause in report.passed for clause in follows), report.passed


def test_third_party_tuner_and_loss_keep_the_contracts(model_dir, tmp_path):
    manager = plugin_manager(
        plugin_source("mytuner", "swift_mytuner.plugin", "swift-mytuner"),
        plugin_source("myloss", "swift_myloss.plugin", "swift-myloss"),
    )
    check_tuner("mytuner", manager, model_dir=model_dir, work_dir=tmp_path)
    check_alignment_loss("myloss", manager)


# -- broken fakes: each battery must reject them ----------------------------------------------------


class _Fakes:
    """Broken capabilities, defined lazily (torch and peft are imported only when a test runs)."""

    @staticmethod
    def tuners():
        import torch

        from swift_core.errors import SwiftError
        from swift_core.tuners.base import Tuner
        from swift_core.tuners.peft_tuners import LoraTuner

        class AdapterOfEverything(Tuner):
            """Trains every weight but claims to save an adapter."""

            name = "everything"

            def apply(self, model, args, family):
                return model.requires_grad_(True)

        class LeakyFreeze(Tuner):
            """Marks the head trainable but lets the optimizer see the frozen weights too."""

            name = "leaky"
            saves_adapter = False
            supports_quantized_base = False

            def check(self, args):
                if args.quant_bits:
                    raise SwiftError("no quantized base")

            def apply(self, model, args, family):
                model.requires_grad_(False)
                model.model.norm.requires_grad_(True)
                return model

            def optimizer_param_groups(self, model, args):
                return [{"params": list(model.parameters()), "lr": 1e-2}]

        class QuantAccepting(LoraTuner):
            """Says it cannot train on a quantized base, yet accepts one."""

            name = "quant-accepting"
            supports_quantized_base = False

            def check(self, args):
                return None

        class ForgetfulLoad(LoraTuner):
            """Loads the base without the adapter it saved."""

            name = "forgetful"

            def load(self, base_model, path):
                return base_model

        class NoMerge(LoraTuner):
            """Returns the wrapped PeftModel from merge."""

            name = "no-merge"

            def merge(self, model):
                return model

        class Inert(Tuner):
            """Trains a logit bias that acts only in train mode: the trained model's output never moves."""

            name = "inert"

            def apply(self, model, args, family):
                model.requires_grad_(False)
                head = model.get_output_embeddings()
                bias = torch.nn.Parameter(torch.zeros(head.out_features))
                head.register_parameter("train_only_bias", bias)
                head.register_forward_hook(lambda module, _, out: out + bias if module.training else out)
                return model

        return {
            "everything": (AdapterOfEverything, "every parameter is trainable, but saves_adapter=True"),
            "leaky": (LeakyFreeze, "frozen .*parameters in the groups"),
            "quant-accepting": (QuantAccepting, "supports_quantized_base=False, but check accepted"),
            "forgetful": (ForgetfulLoad, "load on a fresh base reproduces the trained logits"),
            "no-merge": (NoMerge, "merge returned a PeftModel"),
            "inert": (Inert, "training changes the model's output"),
        }

    @staticmethod
    def losses():
        import torch

        from swift_core.align.base import AlignmentLoss, LossOutput
        from swift_core.align.losses import DPOLoss

        class Backwards(DPOLoss):
            """Prefers the rejected answer."""

            name = "backwards"

            def per_pair(self, chosen_logratios, rejected_logratios, logps, config):
                return super().per_pair(rejected_logratios, chosen_logratios, logps, config)

        class PerExample(DPOLoss):
            """Returns one loss per pair instead of a scalar."""

            name = "per-example"

            def compute(self, logps, config):
                out = super().compute(logps, config)
                out.loss = out.loss * torch.ones(len(logps.chosen_logps))
                return out

        class Careless(AlignmentLoss):
            """Reads the lengths without checking them: a missing field is a TypeError."""

            name = "careless"

            def __call__(self, logps, config):
                margin = (logps.chosen_logps - logps.rejected_logps) / logps.chosen_lengths
                return LossOutput(
                    loss=-torch.nn.functional.logsigmoid(margin).mean(), chosen_rewards=margin.detach()
                )

        class NoReference(DPOLoss):
            """Says it needs a reference, but ignores it."""

            name = "no-reference"

            def compute(self, logps, config):
                margin = logps.chosen_logps - logps.rejected_logps
                return LossOutput(
                    loss=-torch.nn.functional.logsigmoid(config.beta * margin).mean(),
                    chosen_rewards=logps.chosen_logps.detach(),
                )

        return {
            "backwards": (Backwards, True, "the loss falls as the chosen answers get likelier"),
            "per-example": (PerExample, True, "the loss must be a scalar tensor"),
            "careless": (Careless, False, r"without \w+ it raised TypeError"),
            "no-reference": (NoReference, True, "ignores the reference log-probs"),
        }

    @staticmethod
    def quantizers():
        from transformers import BitsAndBytesConfig

        from swift_core.errors import SwiftError
        from swift_core.quantizers.base import Quantizer

        class Sound(Quantizer):
            name = "sound"

            def check(self, args):
                if args.quant_bits not in (4, 8):
                    raise SwiftError(f"quant_bits must be 4 or 8, got {args.quant_bits}")

            def load_kwargs(self, args, dtype):
                return {"quantization_config": BitsAndBytesConfig(load_in_4bit=True)}

        class AnyBits(Sound):
            name = "any-bits"

            def check(self, args):
                return None

        class NoConfig(Sound):
            name = "no-config"

            def load_kwargs(self, args, dtype):
                return {"load_in_4bit": True}

        class Crashing(Sound):
            """Refuses bad bits with a bare ValueError (a traceback for a user's mistake)."""

            name = "crashing"

            def check(self, args):
                if args.quant_bits != 4:
                    raise ValueError("bad bits")

        return {
            "sound": (Sound, None),
            "any-bits": (AnyBits, "check accepted quant_bits=0"),
            "no-config": (NoConfig, "no quantization_config in"),
            "crashing": (Crashing, "raised ValueError: bad bits"),
        }


@pytest.fixture()
def fakes(monkeypatch):
    """A plugin `contract-fakes` registering every broken fake, from an in-memory module."""
    pytest.importorskip("peft")
    tuners, losses, quantizers = _Fakes.tuners(), _Fakes.losses(), _Fakes.quantizers()
    module = types.ModuleType("swift_contract_fakes")
    for table in (tuners, losses, quantizers):
        for name, entry in table.items():
            setattr(module, f"F_{name.replace('-', '_')}", entry[0])

    def factory(name):
        return f"swift_contract_fakes:F_{name.replace('-', '_')}"

    @hookimpl
    def register_tuners(register):
        for name in tuners:
            register(TunerDescriptor(name=name, factory=factory(name)))

    @hookimpl
    def register_alignment_losses(register):
        for name, (_, needs_reference, _) in losses.items():
            register(
                AlignmentLossDescriptor(name=name, factory=factory(name), needs_reference=needs_reference)
            )

    @hookimpl
    def register_quantizers(register):
        for name in quantizers:
            register(QuantizerDescriptor(name=name, factory=factory(name), load_time=True))

    module.register_tuners = register_tuners
    module.register_alignment_losses = register_alignment_losses
    module.register_quantizers = register_quantizers
    monkeypatch.setitem(sys.modules, "swift_contract_fakes", module)
    manager = plugin_manager(plugin_source("contract-fakes", "swift_contract_fakes"))
    return types.SimpleNamespace(manager=manager, tuners=tuners, losses=losses, quantizers=quantizers)


@pytest.mark.parametrize("name", ["everything", "leaky", "quant-accepting", "forgetful", "no-merge", "inert"])
def test_tuner_battery_rejects_a_broken_tuner(name, fakes, model_dir, tmp_path):
    message = fakes.tuners[name][1]
    with pytest.raises(ContractFailure, match=message) as info:
        check_tuner(name, fakes.manager, model_dir=model_dir, work_dir=tmp_path)
    assert info.value.capability == f"tuner {name!r} (contract-fakes)"


@pytest.mark.parametrize("name", ["backwards", "per-example", "careless", "no-reference"])
def test_loss_battery_rejects_a_broken_loss(name, fakes):
    with pytest.raises(ContractFailure, match=fakes.losses[name][2]):
        check_alignment_loss(name, fakes.manager)


def test_quantizer_battery_passes_a_sound_quantizer_without_loading(fakes):
    report = check_quantizer("sound", fakes.manager, good_bits=(4, 8))
    assert "load_kwargs gives from_pretrained a quantization_config" in report.passed
    assert [name for name, _ in report.skipped] == ["the model loads quantized and trains with an adapter"]


@pytest.mark.parametrize("name", ["any-bits", "no-config", "crashing"])
def test_quantizer_battery_rejects_a_broken_quantizer(name, fakes):
    with pytest.raises(ContractFailure, match=fakes.quantizers[name][1]):
        check_quantizer(name, fakes.manager)


# -- the kit itself ---------------------------------------------------------------------------------


def test_importing_the_kit_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from swift_core.testing import (ContractFailure, EnginePlugin, FakeHub, check_alignment_loss,\n"
        "    check_engine, check_quantizer, check_tuner, collect, fake_library, isolated_plugins,\n"
        "    plugin_manager, run_async, run_swift, setup_test_environment, tiny_model, write_chat_dataset)\n"
        "import swift_core.testing as kit\n"
        "[getattr(kit, name) for name in kit.__all__]\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'numpy', 'pytest') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_datasets_load_as_swift_reads_them(tmp_path, manager):
    from swift_core.align.data import paired_check
    from swift_core.datasets.loader import load_rows
    from swift_core.testing import write_chat_dataset, write_preference_dataset

    chat = write_chat_dataset(tmp_path, 12, n_eval=4)
    assert len(load_rows(str(chat.train), manager=manager).rows) == 12
    assert len(load_rows(str(chat.eval), manager=manager).rows) == 4
    pref = write_preference_dataset(tmp_path, 24)
    assert pref.eval is None
    rows = load_rows(str(pref.train), manager=manager, check=paired_check).rows
    assert rows and all(r["rejected_response"] for r in rows)


def test_isolated_plugins_hides_the_policy_and_restores_it(monkeypatch):
    from swift_core.testing import isolated_plugins

    monkeypatch.setenv("SWIFT_DISABLE_PLUGINS", "bnb")
    with isolated_plugins():
        assert "SWIFT_DISABLE_PLUGINS" not in os.environ
        os.environ["SWIFT_LOAD_PLUGINS"] = "x"
    assert os.environ["SWIFT_DISABLE_PLUGINS"] == "bnb"
    assert "SWIFT_LOAD_PLUGINS" not in os.environ
