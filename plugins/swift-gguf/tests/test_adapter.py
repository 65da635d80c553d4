"""A PEFT LoRA adapter written as a GGUF LoRA adapter (llama.cpp `--lora`): metadata llama.cpp
checks (type, architecture, alpha), tensor names and shapes as llama.cpp validates them against the
base, and the numbers: base weights from the base's GGUF plus alpha/rank * lora_b @ lora_a from the
adapter's equal PEFT's merged weights (Llama: q/k rows reordered alike). What llama.cpp adapters
cannot hold is refused."""

from __future__ import annotations

import json
import math
import re

import pytest

from swift_core.testing import one_thread, setup_test_environment
from swift_core.testing import tiny_model as build_tiny_model

setup_test_environment()

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")
peft = pytest.importorskip("peft")

from gguf.quants import dequantize  # noqa: E402
from swift_gguf.convert import _interleave_rope_rows  # noqa: E402
from swift_gguf.options import GgufOptions  # noqa: E402
from swift_gguf.quantizer import GgufQuantizer  # noqa: E402

from swift_core.errors import SwiftError  # noqa: E402
from swift_core.quantizers.base import ExportJob  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Llama and a LoRA adapter on every linear layer with random (non-zero) B factors."""
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("gguf-lora")
    with one_thread():
        base = build_tiny_model(root / "base", model_type="llama", template="llama3")
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        config = peft.LoraConfig(r=4, lora_alpha=16, target_modules=TARGETS, init_lora_weights=False)
        torch.manual_seed(1)
        lora = peft.get_peft_model(model, config)
        lora.save_pretrained(root / "adapter")
        merged = {k: v.detach().clone() for k, v in lora.merge_and_unload().state_dict().items()}
    return base, root / "adapter", merged


def _export_adapter(base, adapter, out, **options):
    out.mkdir()
    job = ExportJob(
        model_dir=base, output_dir=out, bits=None, options=GgufOptions(**options), log=lambda _: None
    )
    return GgufQuantizer().export_adapter(job, adapter)


def test_adapter_file_merges_to_peft_weights(trained, tmp_path):
    base, adapter, merged = trained
    result = _export_adapter(base, adapter, tmp_path / "adapter")
    assert result.weight_files == ["adapter-F16.gguf"] and result.loads_in == ["llama.cpp", "ollama"]
    assert result.extra["lora_alpha"] == 16.0 and result.extra["lora_ranks"] == [4]
    reader = gguf.GGUFReader(tmp_path / "adapter" / result.weight_files[0])
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("general.architecture").contents() == "llama"
    assert reader.get_field("adapter.type").contents() == "lora"
    alpha = reader.get_field("adapter.lora.alpha").contents()
    lora = {t.name: t for t in reader.tensors}
    assert len(lora) == 2 * len(TARGETS) * 2  # a and b, 7 modules, 2 layers

    base_out = tmp_path / "base"
    base_out.mkdir()
    job = ExportJob(model_dir=base, output_dir=base_out, bits=None, options=GgufOptions(gguf_type="f32"))
    base_result = GgufQuantizer().export(job)
    weights = {t.name: t for t in gguf.GGUFReader(base_out / base_result.weight_files[0]).tensors}
    config = json.loads((base / "config.json").read_text())
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    checked = 0
    for hf_name, expected in merged.items():
        name = name_map.get_name(hf_name, try_suffixes=(".weight",))
        if f"{name}.lora_a" not in lora:
            continue
        a, b, w = lora[f"{name}.lora_a"], lora[f"{name}.lora_b"], weights[name]
        # llama.cpp's shape checks: base ne = (in, out), lora_a ne = (in, rank), lora_b ne = (rank, out)
        assert a.shape[0] == w.shape[0] and b.shape[1] == w.shape[1] and a.shape[1] == b.shape[0], name
        rank = int(a.shape[1])
        delta = dequantize(b.data, b.tensor_type) @ dequantize(a.data, a.tensor_type)
        rebuilt = dequantize(w.data, w.tensor_type) + alpha / rank * delta
        target = expected.numpy()
        if ".attn_q." in name:
            target = _interleave_rope_rows(target, config["num_attention_heads"])
        elif ".attn_k." in name:
            target = _interleave_rope_rows(target, config["num_key_value_heads"])
        base_w = dequantize(w.data, w.tensor_type)
        # F16 factors: the rebuilt update is within 1e-3 of PEFT's (measured: at most 2.9e-4).
        error = np.linalg.norm(rebuilt - target) / np.linalg.norm(target - base_w)
        assert error < 1e-3, (name, error)
        checked += 1
    assert checked == len(TARGETS) * config["num_hidden_layers"]


def test_rslora_alpha_is_rescaled(trained, tmp_path):
    base, adapter, _ = trained
    rs = tmp_path / "rs"
    rs.mkdir()
    config = json.loads((adapter / "adapter_config.json").read_text())
    (rs / "adapter_config.json").write_text(json.dumps({**config, "use_rslora": True}))
    (rs / "adapter_model.safetensors").write_bytes((adapter / "adapter_model.safetensors").read_bytes())
    result = _export_adapter(base, rs, tmp_path / "out")
    assert result.extra["lora_alpha"] == pytest.approx(16.0 * math.sqrt(4))  # alpha/rank == 16/sqrt(4)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "fully trained modules (lm_head)"),
        ({"alpha_pattern": {"q_proj": 4}}, "per-module alphas"),
        ({"peft_type": "IA3"}, "LoRA only"),
    ],
)
def test_what_llama_cpp_adapters_cannot_hold_is_refused(change, message, trained, tmp_path):
    base, adapter, _ = trained
    bad = tmp_path / "bad"
    bad.mkdir()
    config = json.loads((adapter / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**config, **change}))
    (bad / "adapter_model.safetensors").write_bytes((adapter / "adapter_model.safetensors").read_bytes())
    with pytest.raises(SwiftError, match=re.escape(message)):
        _export_adapter(base, bad, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
