"""Issue 11 (2): a model folder's own Python runs only when the user asks for it.

Before the fix the family (minicpm, internlm2, ...) decided `trust_remote_code=True`, so a folder
declaring `MiniCPMForCausalLM` with an `auto_map` ran its code during sft, infer and deploy.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest

from swift_core.errors import SwiftError

EVIL = """
from pathlib import Path
Path({marker!r}).write_text("ran")
from transformers import PretrainedConfig
class EvilConfig(PretrainedConfig):
    model_type = "minicpm"
"""


def _evil_folder(tmp_path: Path, tiny_qwen: Path) -> tuple[Path, Path]:
    folder = tmp_path / "MiniCPM-2B-sft"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_qwen / name, folder / name)
    config = json.loads((tiny_qwen / "config.json").read_text())
    config.update(
        architectures=["MiniCPMForCausalLM"],
        model_type="minicpm",
        auto_map={
            "AutoConfig": "configuration_evil.EvilConfig",
            "AutoModelForCausalLM": "configuration_evil.EvilConfig",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "marker"
    (folder / "configuration_evil.py").write_text(EVIL.format(marker=str(marker)))
    return folder, marker


def test_remote_code_is_refused_by_default_naming_the_flag(tmp_path, tiny_qwen):
    from swift_core.models.loader import prepare_for_inference, prepare_model

    folder, marker = _evil_folder(tmp_path, tiny_qwen)
    for prepare in (prepare_model, prepare_for_inference):
        with pytest.raises(SwiftError) as err:
            prepare(str(folder))
        assert "--trust_remote_code true" in str(err.value) and "configuration_evil" in str(err.value)
    assert not marker.exists()


def test_opting_in_passes_trust_remote_code(tmp_path, tiny_qwen):
    from swift_core.models.loader import load_weights, prepare_model

    folder, marker = _evil_folder(tmp_path, tiny_qwen)
    prepared = prepare_model(str(folder), trust_remote_code=True)
    assert prepared.trust_remote_code is True
    with contextlib.suppress(Exception):  # the fake code is no model: what matters is that it ran
        load_weights(prepared, "float32")
    assert marker.read_text() == "ran"


def test_a_policy_can_forbid_remote_code(tmp_path, tiny_qwen, monkeypatch):
    from swift_core.models.loader import prepare_model

    folder, marker = _evil_folder(tmp_path, tiny_qwen)
    policy = tmp_path / "policy.toml"
    policy.write_text("allow_remote_code = false\n")
    monkeypatch.setenv("SWIFT_POLICY", str(policy))
    with pytest.raises(SwiftError) as err:
        prepare_model(str(folder), trust_remote_code=True)
    assert str(policy) in str(err.value) and "remote code" in str(err.value)
    assert not marker.exists()


def test_native_folders_never_trust_remote_code(tiny_qwen):
    from swift_core.models.loader import prepare_model

    assert prepare_model(str(tiny_qwen)).trust_remote_code is False


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sft", "infer", "export"])
def test_commands_refuse_remote_code_unasked(tmp_path, tiny_qwen, command):
    from helpers import run_swift

    folder, marker = _evil_folder(tmp_path, tiny_qwen)
    data = tmp_path / "d.jsonl"
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    data.write_text(json.dumps(row) + "\n")
    extra = {
        "sft": ("--dataset", str(data), "--output_dir", str(tmp_path / "o")),
        "infer": ("--val_dataset", str(data), "--result_path", str(tmp_path / "r.jsonl")),
        "export": ("--quant_method", "bnb", "--quant_bits", "4", "--output_dir", str(tmp_path / "e")),
    }[command]
    r = run_swift(command, "--model", str(folder), *extra)
    assert r.returncode == 2, r.stderr
    assert "--trust_remote_code true" in r.stderr and "Traceback" not in r.stderr
    assert not marker.exists()
