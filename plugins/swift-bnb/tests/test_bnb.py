"""swift-bnb on the CPU: bitsandbytes 4-bit (NF4, double quant) and 8-bit loads of a tiny random
Qwen2, QLoRA training with falling loss, frozen quantized base, adapter save/reload with identical
logits, and the CPU inference-repacking trap of bitsandbytes' Linear4bit."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from swift_core.testing import one_thread, plugin_manager, plugin_source, setup_test_environment
from swift_core.testing import tiny_model as build_tiny_model

setup_test_environment()

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")

from swift_core.errors import SwiftError  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random Qwen2 folder (qwen2_5 template), built once for this module."""
    with one_thread():
        return build_tiny_model(tmp_path_factory.mktemp("bnb") / "m", model_type="qwen2", template="qwen2_5")


def _args(**overrides):
    values = {
        "quant_method": "bnb",
        "quant_bits": 4,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "device": "cpu",
        "gradient_checkpointing": False,
    }
    values.update(overrides)
    return types.SimpleNamespace(**values)


def _manager():
    return plugin_manager(plugin_source("bnb", "swift_bnb.plugin", "swift-bnb", "0.1.0"), builtins=False)


def _load(path, args):
    from swift_bnb.quantizer import BnbQuantizer
    from transformers import AutoModelForCausalLM

    kwargs = BnbQuantizer().load_kwargs(args, torch.float32)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)


def _batch(path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    text = [
        "The quick brown fox jumps over the lazy dog, again and again.",
        "Quantized base, low-rank adapters: QLoRA trains on a CPU too.",
    ]
    enc = tok(text, return_tensors="pt", padding=True)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def _snapshot_base(model):
    """The quantized base weights (and their scales) of every bnb linear layer, copied."""
    snap = {}
    for name, module in model.named_modules():
        if isinstance(module, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)):
            snap[name] = module.weight.data.clone()
            state = getattr(module.weight, "quant_state", None)
            if state is not None:
                snap[name + ".absmax"] = state.absmax.clone()
    return snap


def _train(model, batch, steps=8, lr=1e-2):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def _qlora(path, args, tmp_path, linear_cls, weight_dtype):
    from peft import LoraConfig, PeftModel, get_peft_model
    from swift_bnb.quantizer import BnbQuantizer

    quantizer = BnbQuantizer()
    quantizer.check(args)
    model = _load(path, args)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, linear_cls)
    assert q_proj.weight.dtype == weight_dtype
    quantized = [n for n, m in model.named_modules() if isinstance(m, linear_cls)]
    assert len(quantized) == 7 * model.config.num_hidden_layers  # every linear but lm_head

    model = quantizer.prepare_for_training(model, args)
    assert not model.is_gradient_checkpointing  # peft's default would have switched it on
    assert not any(p.requires_grad for p in model.parameters())
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS))
    before = _snapshot_base(model)
    assert before

    batch = _batch(path)
    losses = _train(model, batch)
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert losses[-1] < losses[0] - 0.2, losses
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 6, losses

    after = _snapshot_base(model)
    assert after.keys() == before.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), f"{key} changed"
    for name, param in model.named_parameters():
        assert param.requires_grad == ("lora_" in name), name
    assert isinstance(model.base_model.model.model.layers[0].self_attn.q_proj.base_layer, linear_cls)

    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    assert (adapter / "adapter_model.safetensors").is_file()

    reloaded = PeftModel.from_pretrained(_load(path, args), adapter)
    # Train mode with dropout 0 is deterministic and keeps both on bitsandbytes' training kernel
    # (in eval mode a fresh 4-bit base may take the CPU inference kernel: close, not identical).
    model.train()
    reloaded.train()
    with torch.no_grad():
        trained_logits = model(**batch).logits
        reloaded_logits = reloaded(**batch).logits
        base_logits = _load(path, args).train()(**batch).logits
    assert torch.equal(trained_logits, reloaded_logits)
    assert not torch.allclose(trained_logits, base_logits, atol=1e-3)  # the adapter does something
    reloaded.eval()
    with torch.no_grad():
        eval_logits = reloaded(**batch).logits
    assert torch.allclose(eval_logits, reloaded_logits, atol=2e-2), (
        (eval_logits - reloaded_logits).abs().max()
    )
    return losses


# -- plugin and descriptor --------------------------------------------------------------------------


def test_plugin_registers_a_load_time_and_export_time_quantizer():
    from swift_bnb.quantizer import BnbQuantizer

    manager = _manager()
    assert manager.plugins["bnb"].status == "loaded", manager.plugins["bnb"].reason
    desc = manager.get("quantizers", "bnb")
    assert desc.load_time is True
    assert desc.export_time is True  # swift quantize --method bnb writes a bitsandbytes checkpoint
    assert desc.requires == ("bitsandbytes",)
    assert desc.distribution == "swift-bnb"
    assert manager.get("quantizers", "bitsandbytes").name == "bnb"
    quantizer = manager.load("quantizers", "bnb")()
    assert isinstance(quantizer, BnbQuantizer)
    assert quantizer.name == "bnb"


def test_entry_point_is_installed():
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group="swift")}
    assert "bnb" in eps, "pip install -e plugins/swift-bnb"
    assert eps["bnb"].value == "swift_bnb.plugin"
    assert eps["bnb"].dist.name == "swift-bnb"


def test_plugin_module_is_import_light():
    code = (
        "import sys, swift_bnb.plugin\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# -- check and load_kwargs --------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [3, None, 16])
def test_check_refuses_unsupported_bits(bits):
    from swift_bnb.quantizer import BnbQuantizer

    with pytest.raises(SwiftError, match=r"--quant_bits 4 or 8 \(allowed: 4, 8\)"):
        BnbQuantizer().check(_args(quant_bits=bits))


def test_check_accepts_4_and_8_and_refuses_bad_quant_type():
    from swift_bnb.quantizer import BnbQuantizer

    BnbQuantizer().check(_args(quant_bits=4))
    BnbQuantizer().check(_args(quant_bits=8))
    BnbQuantizer().check(_args(quant_bits=4, bnb_4bit_quant_type="fp4"))
    with pytest.raises(SwiftError, match="nf4, fp4"):
        BnbQuantizer().check(_args(quant_bits=4, bnb_4bit_quant_type="int4"))


def test_load_kwargs():
    from swift_bnb.quantizer import BnbQuantizer

    kw = BnbQuantizer().load_kwargs(_args(quant_bits=4, bnb_4bit_use_double_quant=False), "bfloat16")
    config = kw["quantization_config"]
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant is False
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert kw["device_map"] == {"": "cpu"}

    kw = BnbQuantizer().load_kwargs(_args(quant_bits=4, bnb_4bit_quant_type="fp4"), torch.float16)
    assert kw["quantization_config"].bnb_4bit_quant_type == "fp4"
    assert kw["quantization_config"].bnb_4bit_use_double_quant is True
    assert kw["quantization_config"].bnb_4bit_compute_dtype == torch.float16

    kw = BnbQuantizer().load_kwargs(_args(quant_bits=8), None)
    assert kw["quantization_config"].load_in_8bit and not kw["quantization_config"].load_in_4bit

    with pytest.raises(SwiftError):
        BnbQuantizer().load_kwargs(_args(quant_bits=3), None)


def test_device_map_follows_the_runtime(monkeypatch):
    """The runtime decides where the weights are quantized, not a device-name string."""
    from swift_bnb.quantizer import BnbQuantizer

    class FakeAccelerator:  # a HardwareRuntime's `device(index)`, as swift-cuda has it
        def device(self, index=0):
            return torch.device("meta") if index == 0 else f"cuda:{index}"

    from swift_core.builtin.runtime_cpu import CpuRuntime

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert BnbQuantizer().load_kwargs(_args(), None, CpuRuntime())["device_map"] == {"": "cpu"}
    assert BnbQuantizer().load_kwargs(_args(), None, FakeAccelerator())["device_map"] == {"": "meta"}
    # Each torchrun worker quantizes onto its own device.
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert BnbQuantizer().load_kwargs(_args(), None, FakeAccelerator())["device_map"] == {"": "cuda:1"}


# -- QLoRA on the CPU -------------------------------------------------------------------------------


def test_qlora_4bit_nf4_double_quant(tiny_model, tmp_path):
    args = _args(quant_bits=4, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)
    model = _load(tiny_model, args)
    state = model.model.layers[0].mlp.up_proj.weight.quant_state
    assert state.quant_type == "nf4"
    assert state.nested  # double quant: the scales are quantized too
    _qlora(tiny_model, args, tmp_path, bnb.nn.Linear4bit, torch.uint8)


def test_lora_8bit(tiny_model, tmp_path):
    _qlora(tiny_model, _args(quant_bits=8), tmp_path, bnb.nn.Linear8bitLt, torch.int8)


def test_gradient_checkpointing_is_passed_through(tiny_model):
    from swift_bnb.quantizer import BnbQuantizer

    args = _args(gradient_checkpointing=True)
    model = BnbQuantizer().prepare_for_training(_load(tiny_model, args), args)
    assert model.is_gradient_checkpointing


def test_training_after_cpu_inference(tiny_model):
    """bitsandbytes repacks 4-bit weights for CPU inference (AVX512-BF16 CPUs) on the first
    eval-mode no_grad forward; training afterwards failed ("a view of a leaf Variable ...
    in-place"). prepare_for_training restores the layout and keeps evaluations from repacking."""
    from peft import LoraConfig, get_peft_model
    from swift_bnb.quantizer import BnbQuantizer

    args = _args(quant_bits=4)
    batch = _batch(tiny_model)
    model = _load(tiny_model, args)
    model.eval()
    with torch.no_grad():
        model.generate(input_ids=batch["input_ids"][:1, :4], max_new_tokens=2, do_sample=False)
    model = BnbQuantizer().prepare_for_training(model, args)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert not getattr(q_proj.weight.quant_state, "packing_format_for_cpu", False)
    model = get_peft_model(model, LoraConfig(r=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    losses = _train(model, batch, steps=3)
    model.eval()  # an evaluation in the middle of training, as the trainer runs it
    with torch.no_grad():
        model(**batch)
    assert not getattr(q_proj.weight.quant_state, "packing_format_for_cpu", False)
    losses += _train(model, batch, steps=3)
    assert losses[-1] < losses[0], losses
