"""swift-gguf without writing a model: registration (light: no torch, no gguf imported), the
quantizer contract's factory and bit-width clauses, `check` refusing bad types, bits, file names and
architectures before any model loads, pre-tokenizer recognition, and Llama 3.1's RoPE factors
against transformers' own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from swift_gguf.quantizer import GgufQuantizer
from swift_gguf.tokenizer import SPLIT_REGEXES, detect_pre
from swift_gguf.types import resolve_type

from swift_core.errors import SwiftError
from swift_core.testing import (
    check_quantizer,
    plugin_manager,
    plugin_source,
    quantizer_args,
    setup_test_environment,
)

setup_test_environment()


@pytest.fixture(scope="module")
def manager():
    return plugin_manager(plugin_source("gguf", "swift_gguf.plugin", "swift-gguf", "0.1.0"))


def _args(manager, **overrides):
    return quantizer_args(manager.get("quantizers", "gguf"), **{"quant_bits": None, **overrides})


def test_registers_the_quantizer_without_importing_torch_or_gguf():
    code = textwrap.dedent(
        """
        import sys
        from swift_core.plugins import PluginManager, PluginSource, builtin_sources
        from swift_core.policy import Policy
        m = PluginManager(Policy(), [*builtin_sources(), PluginSource("gguf", "swift_gguf.plugin", "swift-gguf", "0.1")])
        d = m.get("quantizers", "gguf")
        assert d.factory == "swift_gguf.quantizer:GgufQuantizer", d
        assert d.export_time and not d.load_time, d
        heavy = [n for n in ("gguf", "numpy", "torch", "transformers") if n in sys.modules]
        assert not heavy, heavy
        print(m.plugins["gguf"].status)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "loaded"


def test_keeps_the_quantizer_contract(manager):
    report = check_quantizer("gguf", manager, args=_args(manager), good_bits=(4, 5, 8, 16))
    assert "the factory makes a Quantizer that works at load or export time" in report.passed


@pytest.mark.parametrize(
    ("gguf_type", "bits", "scheme"),
    [
        ("auto", None, "Q8_0"),
        ("auto", 16, "F16"),
        ("auto", 8, "Q8_0"),
        ("auto", 5, "Q5_1"),
        ("auto", 4, "Q4_1"),
        ("Q4_0", 4, "Q4_0"),
        ("bf16", 16, "BF16"),
        ("f32", None, "F32"),
        ("q5_0", None, "Q5_0"),
    ],
)
def test_type_from_flags(gguf_type, bits, scheme, manager):
    assert resolve_type(gguf_type, bits).scheme == scheme
    GgufQuantizer().check(_args(manager, gguf_type=gguf_type, quant_bits=bits))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quant_bits": 3}, "--quant_bits 16 (f16), 8 (q8_0), 5 (q5_1), 4 (q4_1)"),
        ({"quant_bits": 7}, "got 7"),
        ({"gguf_type": "q8_0", "quant_bits": 4}, "--quant_bits 4 disagrees with --gguf_type q8_0"),
        ({"gguf_type": "f16", "quant_bits": 8}, "disagrees"),
        ({"gguf_type": "q4_k_m"}, "llama-quantize model-F16.gguf model-Q4_K_M.gguf Q4_K_M"),
        ({"gguf_type": "q6_k"}, "cannot write Q6_K"),
        ({"gguf_type": "int4"}, "--gguf_type must be auto or one of f32, f16, bf16, q8_0"),
        ({"gguf_file_name": "../x.gguf"}, "plain file name"),
        ({"gguf_file_name": "model.bin"}, "ending in .gguf"),
    ],
)
def test_check_refuses_bad_settings(overrides, message, manager):
    with pytest.raises(SwiftError) as err:
        GgufQuantizer().check(_args(manager, **overrides))
    assert message in str(err.value)


def test_check_refuses_an_unsupported_local_architecture(tmp_path, manager):
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    )
    with pytest.raises(SwiftError) as err:
        GgufQuantizer().check(_args(manager, model=str(tmp_path)))
    assert "model_type 'gpt2' (GPT2LMHeadModel)" in str(err.value)
    assert "supported: qwen2, qwen3, llama" in str(err.value)
    # A hub id (no local folder) is checked at export time instead.
    GgufQuantizer().check(_args(manager, model="Qwen/Qwen2.5-0.5B-Instruct"))


def _split_then_bytes(pattern: str) -> dict:
    return {
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            ],
        }
    }


def test_recognises_llama_cpp_pre_tokenizers():
    by_name = {name: pattern for pattern, name in SPLIT_REGEXES.items()}
    assert detect_pre(_split_then_bytes(by_name["qwen2"])) == "qwen2"
    assert detect_pre(_split_then_bytes(by_name["llama-bpe"])) == "llama-bpe"
    assert detect_pre(
        {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}
    ) == ("gpt-2")
    assert detect_pre(_split_then_bytes(r"\p{L}+|\s+")) is None  # an unknown regex: the user must name it
    assert detect_pre({"pre_tokenizer": {"type": "Metaspace"}}) is None


def test_llama3_rope_factors_match_transformers():
    torch = pytest.importorskip("torch")
    from swift_gguf.convert import _llama3_rope_factors, _rope
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_theta": 500000.0,
    }
    config = LlamaConfig(
        hidden_size=512, num_attention_heads=4, max_position_embeddings=131072, rope_parameters=scaling
    )
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    head_dim = 128
    plain = 1.0 / 500000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    theta, params = _rope(config.to_dict())
    divisors = _llama3_rope_factors(config.to_dict(), head_dim, theta, params)
    assert divisors.shape == (head_dim // 2,)
    assert {1.0, 8.0} <= set(divisors.round(6).tolist())  # high frequencies kept, low ones divided by 8
    torch.testing.assert_close(
        plain / torch.from_numpy(divisors).double(), scaled.double(), rtol=1e-5, atol=0
    )
