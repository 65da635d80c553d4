"""swift-gguf writing real files: a tiny random Qwen2, Llama and Qwen3 (hidden 64, 2 layers, the
test kit's byte-level BPE tokenizer) exported to F16, Q8_0 and the 4-bit type, read back with
`gguf.GGUFReader` (metadata, tokenizer, every tensor with its shape and type, dequantized values
against the source weights), reloaded through transformers' GGUF loader (logits against the fp32
model, greedy generation, the tokenizer transformers rebuilds from the metadata), plus the F16
fallback for rows that do not fit a type's blocks, every other writable type, and the errors.

The error bounds were measured on these models (gguf 0.19, numpy 2.4) and are written next to each
bound; they depend on the random weights' distribution, so a different tiny model may need them
re-measured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from swift_core.testing import one_thread, setup_test_environment
from swift_core.testing import tiny_model as build_tiny_model

setup_test_environment()

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")

from gguf.quants import dequantize  # noqa: E402
from swift_gguf.convert import _interleave_rope_rows  # noqa: E402
from swift_gguf.options import GgufOptions  # noqa: E402
from swift_gguf.quantizer import GgufQuantizer  # noqa: E402

from swift_core.errors import SwiftError  # noqa: E402
from swift_core.quantizers.base import ExportJob  # noqa: E402

ARCHS = {"qwen2": ("qwen2", "qwen2_5"), "llama": ("llama", "llama3"), "qwen3": ("qwen3", "qwen3")}
# --quant_bits -> the type it selects (4 bits: Q4_1, the most accurate 4-bit type gguf can write).
TYPES = {16: "F16", 8: "Q8_0", 4: "Q4_1"}

# Relative RMS error of each dequantized 2-D weight against the source, ||deq - w|| / ||w||.
# Measured (the worst tensor of the three models): F16 2.1e-4, BF16 1.7e-3, Q8_0 5.5e-3, Q5_1 4.0e-2,
# Q5_0 4.3e-2, Q4_1 8.0e-2, Q4_0 9.1e-2.
WEIGHT_BOUND = {
    "F16": 1e-3,
    "BF16": 8e-3,
    "Q8_0": 1e-2,
    "Q5_1": 5e-2,
    "Q5_0": 6e-2,
    "Q4_1": 0.1,
    "Q4_0": 0.12,
}
# Relative L2 error of the logits of 2x12 random tokens against the fp32 model.
# Measured (qwen2 / llama / qwen3): F16 4.1e-4 / 3.9e-4 / 5.4e-4, Q8_0 1.0e-2 / 9.7e-3 / 1.3e-2,
# Q4_1 8.7e-2 / 9.7e-2 / 1.5e-1 (Qwen3's q/k norms amplify the 4-bit error).
LOGIT_BOUND = {"F16": 2e-3, "Q8_0": 2.5e-2, "Q4_1": 0.2}


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf-models")
    with one_thread():
        return {
            arch: build_tiny_model(root / arch, model_type=model_type, template=template)
            for arch, (model_type, template) in ARCHS.items()
        }


class _Exports:
    """Each (architecture, bits) exported once for the module."""

    def __init__(self, models: dict[str, Path], root: Path):
        self.models, self.root, self.done = models, root, {}

    def __call__(self, arch: str, bits: int | None = None, **options):
        key = (arch, bits, tuple(sorted(options.items())))
        if key not in self.done:
            out = self.root / f"{arch}-{bits}-{len(self.done)}"
            out.mkdir()
            lines: list[str] = []
            job = ExportJob(
                model_dir=self.models[arch],
                output_dir=out,
                bits=bits,
                options=GgufOptions(**options),
                log=lines.append,
            )
            self.done[key] = (out, GgufQuantizer().export(job), lines)
        return self.done[key]


@pytest.fixture(scope="module")
def export(models, tmp_path_factory):
    return _Exports(models, tmp_path_factory.mktemp("gguf-out"))


@pytest.fixture(scope="module")
def sources(models):
    from safetensors.torch import load_file

    return {arch: load_file(str(path / "model.safetensors")) for arch, path in models.items()}


def _field(reader, key):
    field = reader.get_field(key)
    assert field is not None, f"no {key} in the file"
    return field.contents()


def _config(model_dir: Path) -> dict:
    return json.loads((model_dir / "config.json").read_text())


@pytest.mark.parametrize("bits", TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_result_describes_the_file(arch, bits, export):
    out, result, lines = export(arch, bits)
    scheme = TYPES[bits]
    assert result.format == "gguf" and result.scheme == scheme and result.bits == bits
    assert (
        result.weight_files == [f"model-{scheme}.gguf"] and (out / result.weight_files[0]).stat().st_size > 0
    )
    assert set(result.library_versions) == {"gguf", "numpy"}
    assert result.loads_in == ["llama.cpp", "ollama", "transformers"]
    assert result.extra["architecture"] == arch and result.extra["tokenizer_pre"] == "gpt-2"
    assert result.extra["fallback_tensors"] == [] and result.ignored_modules == []
    # Below 8 bits the tied embedding (llama.cpp's output projection too) stays in Q8_0.
    assert result.extra["output_type"] == ("Q8_0" if bits < 8 else scheme)
    assert any("block 2/2 written" in line for line in lines)
    assert (out / "Modelfile").read_text().startswith(f"FROM ./model-{scheme}.gguf\nPARAMETER stop ")


@pytest.mark.parametrize("bits", TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_metadata_and_tokenizer(arch, bits, export, models):
    from transformers import AutoTokenizer

    out, result, _ = export(arch, bits)
    reader = gguf.GGUFReader(out / result.weight_files[0])
    config = _config(models[arch])
    tokenizer = AutoTokenizer.from_pretrained(models[arch])
    assert _field(reader, "general.architecture") == arch
    assert _field(reader, "general.type") == "model"
    assert _field(reader, "general.file_type") == int(gguf.LlamaFileType[f"MOSTLY_{TYPES[bits]}"])
    assert _field(reader, f"{arch}.block_count") == config["num_hidden_layers"]
    assert _field(reader, f"{arch}.embedding_length") == config["hidden_size"]
    assert _field(reader, f"{arch}.feed_forward_length") == config["intermediate_size"]
    assert _field(reader, f"{arch}.context_length") == config["max_position_embeddings"]
    assert _field(reader, f"{arch}.attention.head_count") == config["num_attention_heads"]
    assert _field(reader, f"{arch}.attention.head_count_kv") == config["num_key_value_heads"]
    assert _field(reader, f"{arch}.rope.freq_base") == pytest.approx(config["rope_parameters"]["rope_theta"])
    assert _field(reader, f"{arch}.attention.layer_norm_rms_epsilon") == pytest.approx(config["rms_norm_eps"])

    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert _field(reader, "tokenizer.ggml.model") == "gpt2"
    assert len(tokens) == config["vocab_size"] == len(tokenizer)
    vocab = tokenizer.get_vocab()
    assert all(vocab[t] == i for i, t in enumerate(tokens))
    types = _field(reader, "tokenizer.ggml.token_type")
    specials = set(tokenizer.all_special_ids) | {
        i for i, t in tokenizer.added_tokens_decoder.items() if t.special
    }
    assert {i for i, t in enumerate(types) if t == gguf.TokenType.CONTROL} == specials
    merges = json.loads((models[arch] / "tokenizer.json").read_text())["model"]["merges"]
    assert len(_field(reader, "tokenizer.ggml.merges")) == len(merges)
    assert _field(reader, "tokenizer.ggml.eos_token_id") == tokenizer.eos_token_id
    if tokenizer.bos_token_id is not None:
        assert _field(reader, "tokenizer.ggml.bos_token_id") == tokenizer.bos_token_id
    assert _field(reader, "tokenizer.ggml.add_bos_token") is False  # the test kit's tokenizer adds none
    assert _field(reader, "tokenizer.chat_template") == tokenizer.chat_template


@pytest.mark.parametrize("bits", TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_tensors_match_the_source(arch, bits, export, models, sources):
    out, result, _ = export(arch, bits)
    reader = gguf.GGUFReader(out / result.weight_files[0])
    config = _config(models[arch])
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], config["num_hidden_layers"])
    written = {t.name: t for t in reader.tensors}
    expected = {}
    for hf_name, weight in sources[arch].items():
        expected[name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))] = weight.float().numpy()
    assert set(written) == set(expected)  # tied: no output.weight, like llama.cpp's converter
    for name, source in expected.items():
        tensor = written[name]
        values = dequantize(tensor.data, tensor.tensor_type)
        assert values.shape == source.shape, name
        if arch == "llama" and ".attn_q." in name:
            source = _interleave_rope_rows(source, config["num_attention_heads"])
        elif arch == "llama" and ".attn_k." in name:
            source = _interleave_rope_rows(source, config["num_key_value_heads"])
        qtype = gguf.GGMLQuantizationType(tensor.tensor_type).name
        if source.ndim == 1:
            assert qtype == "F32", name
            np.testing.assert_array_equal(values, source)
            continue
        assert qtype == ("Q8_0" if name == "token_embd.weight" and bits < 8 else TYPES[bits]), name
        error = np.linalg.norm(values - source) / np.linalg.norm(source)
        assert error < WEIGHT_BOUND[qtype], (name, qtype, error)


def _random_ids(vocab_size: int):
    return torch.randint(0, vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def reference(models):
    from transformers import AutoModelForCausalLM

    out = {}
    for arch, path in models.items():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        out[arch] = model
    return out


@pytest.mark.parametrize("bits", TYPES)
@pytest.mark.parametrize("arch", ARCHS)
def test_reloads_in_transformers(arch, bits, export, reference):
    out, result, _ = export(arch, bits)
    model = GgufQuantizer().load_exported(out, result).eval()
    source = reference[arch]
    assert type(model) is type(source)
    ids = _random_ids(source.config.vocab_size)
    with torch.no_grad():
        expected, got = source(ids).logits, model(ids).logits
    error = ((got - expected).norm() / expected.norm()).item()
    assert error < LOGIT_BOUND[TYPES[bits]], error
    with torch.no_grad():
        kwargs = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": source.config.pad_token_id}
        generated = model.generate(ids[:1, :6], **kwargs)
        if bits == 16:  # F16 is close enough that greedy decoding picks the same tokens
            assert generated.tolist() == source.generate(ids[:1, :6], **kwargs).tolist()
    assert generated.shape[1] > 6


def test_transformers_rebuilds_the_tokenizer_from_the_metadata(export, models):
    """Llama only: transformers' GGUF tokenizer for the qwen2/qwen3 architectures ignores
    tokenizer.ggml.pre and always splits with Qwen2's regex (its GGUFQwen2Converter), so the test
    kit's GPT-2-regex tokenizer comes back different there; llama.cpp reads the pre-tokenizer name."""
    from transformers import AutoTokenizer

    arch = "llama"
    out, result, _ = export(arch, 16)
    rebuilt = AutoTokenizer.from_pretrained(out, gguf_file=result.weight_files[0])
    source = AutoTokenizer.from_pretrained(models[arch])
    text = "The quick brown fox, 12345 times: don't stop!  Tabs\tand\nnew lines."
    assert rebuilt(text)["input_ids"] == source(text)["input_ids"]


@pytest.mark.parametrize(
    ("gguf_type", "scheme"), [("bf16", "BF16"), ("q5_1", "Q5_1"), ("q5_0", "Q5_0"), ("q4_0", "Q4_0")]
)
def test_other_writable_types(gguf_type, scheme, export, sources):
    out, result, _ = export("qwen2", gguf_type=gguf_type)
    assert result.scheme == scheme and result.weight_files == [f"model-{scheme}.gguf"]
    reader = gguf.GGUFReader(out / result.weight_files[0])
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, 2)
    for hf_name, weight in sources["qwen2"].items():
        if weight.ndim < 2:
            continue
        tensor = next(
            t for t in reader.tensors if t.name == name_map.get_name(hf_name, try_suffixes=(".weight",))
        )
        qtype = gguf.GGMLQuantizationType(tensor.tensor_type).name
        source = weight.float().numpy()
        error = np.linalg.norm(dequantize(tensor.data, tensor.tensor_type) - source) / np.linalg.norm(source)
        assert error < WEIGHT_BOUND[qtype], (hf_name, qtype, error)


def test_rows_that_do_not_fit_the_blocks_fall_back_to_f16(models, tmp_path):
    """intermediate_size 80: ffn_down's rows (80 long) are not a multiple of Q8_0's 32."""
    from transformers import AutoConfig, AutoModelForCausalLM

    source = tmp_path / "odd"
    config = AutoConfig.from_pretrained(models["qwen2"])
    config.intermediate_size = 80
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(source)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (models["qwen2"] / name).exists():
            shutil.copy(models["qwen2"] / name, source / name)
    out = tmp_path / "out"
    out.mkdir()
    lines: list[str] = []
    job = ExportJob(model_dir=source, output_dir=out, bits=8, options=GgufOptions(), log=lines.append)
    result = GgufQuantizer().export(job)
    assert result.extra["fallback_tensors"] == ["blk.0.ffn_down.weight", "blk.1.ffn_down.weight"]
    assert result.ignored_modules == ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]
    assert any("2 weight(s) kept in F16" in line for line in lines)
    reader = gguf.GGUFReader(out / result.weight_files[0])
    kinds = {t.name: gguf.GGMLQuantizationType(t.tensor_type).name for t in reader.tensors}
    assert kinds["blk.0.ffn_down.weight"] == "F16" and kinds["blk.0.ffn_up.weight"] == "Q8_0"


def test_an_unsupported_architecture_is_refused_before_writing(tmp_path):
    source = tmp_path / "gpt2"
    source.mkdir()
    (source / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    )
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SwiftError, match=r"cannot convert model_type 'gpt2'.*supported: qwen2, qwen3, llama"):
        GgufQuantizer().export(ExportJob(model_dir=source, output_dir=out, bits=None, options=GgufOptions()))
    assert list(out.iterdir()) == []


def test_a_sentencepiece_style_tokenizer_is_refused(models, tmp_path):
    source = tmp_path / "spm"
    shutil.copytree(models["llama"], source)
    tok = json.loads((source / "tokenizer.json").read_text())
    tok["model"]["byte_fallback"] = True
    (source / "tokenizer.json").write_text(json.dumps(tok))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SwiftError, match="byte-level BPE tokenizers only"):
        GgufQuantizer().export(ExportJob(model_dir=source, output_dir=out, bits=None, options=GgufOptions()))


def test_swift_export_runs_the_quantizer_and_verifies_it(models, tmp_path):
    """The core pipeline (`swift export --quant_method gguf`) around the plugin: checks, export into
    the atomic folder, reload through `load_exported`, perplexity and greedy generation, manifest."""
    from swift_core.cli.export_cmd import ExportArguments
    from swift_core.config.options import build_arguments
    from swift_core.export.quantize import MANIFEST, run_quantize
    from swift_core.testing import plugin_manager, plugin_source, write_chat_dataset

    manager = plugin_manager(plugin_source("gguf", "swift_gguf.plugin", "swift-gguf", "0.1.0"))
    data = write_chat_dataset(tmp_path / "data").train
    out = tmp_path / "exported"
    args = build_arguments(
        ExportArguments,
        manager,
        model=str(models["qwen2"]),
        quant_method="gguf",
        quant_bits=4,
        dataset=[str(data)],
        quant_eval_samples=4,
        quant_seqlen=32,
        output_dir=str(out),
    )
    run_quantize(args, manager)
    manifest = json.loads((out / MANIFEST).read_text())
    assert (manifest["method"], manifest["format"], manifest["scheme"]) == ("gguf", "gguf", "Q4_1")
    assert manifest["options"]["gguf_type"] == "auto" and "gguf" in manifest["library_versions"]
    check = manifest["verification"]
    assert check["size_after"] == (out / "model-Q4_1.gguf").stat().st_size < check["size_before"] / 2
    # Q4_1 on the random tiny model: perplexity moved by +0.18% when measured.
    assert check["eval_rows"] == 4 and check["ppl_after"] == pytest.approx(check["ppl_before"], rel=0.02)
    assert check["sample_after"] is not None


def test_values_beyond_float16_are_refused_for_f16(models, tmp_path):
    from safetensors.torch import load_file, save_file

    source = tmp_path / "wide"
    shutil.copytree(models["qwen2"], source)
    weights = load_file(str(source / "model.safetensors"))
    weights["model.layers.0.mlp.up_proj.weight"][0, 0] = 1e5
    save_file(weights, str(source / "model.safetensors"), metadata={"format": "pt"})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(
        SwiftError, match=r"model.layers.0.mlp.up_proj.weight has values beyond float16.*bf16"
    ):
        GgufQuantizer().export(ExportJob(model_dir=source, output_dir=out, bits=16, options=GgufOptions()))
    assert not (out / "model-F16.gguf").exists()  # the half-written file is removed
    result = GgufQuantizer().export(
        ExportJob(model_dir=source, output_dir=out, bits=16, options=GgufOptions(gguf_type="bf16"))
    )
    assert result.scheme == "BF16"
