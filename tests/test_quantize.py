"""`swift quantize` / `swift export --quant_method`: the pipeline around an export-time quantizer.

The pipeline is tested in-process with fake quantizers (a plugin module in memory: one that writes
a plain copy, one that fails half-way, one that needs calibration) for what it owns: checks before
any model loads, calibration through the chat template, the atomic output, the verification and
the manifest. The real bitsandbytes export (plugins/swift-bnb) runs from the CLI, from a model
folder and from a LoRA checkpoint merged first.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from dataclasses import dataclass

import pytest
from helpers import run_swift

from swift_core import hookimpl
from swift_core.config import arg
from swift_core.config.options import build_arguments
from swift_core.descriptors import QuantizerDescriptor
from swift_core.errors import SwiftError
from swift_core.quantizers import ExportResult, Quantizer
from swift_core.testing import plugin_manager, plugin_source

pytest.importorskip("transformers")


@dataclass(kw_only=True)
class CopyOptions:
    copy_scale: float = arg(1.0, help="copy: multiply every weight by this")


class CopyQuantizer(Quantizer):
    """'Quantizes' by saving the source again with every weight scaled (1.0: an exact copy)."""

    name = "copy"
    calibration = "optional"
    seen: dict = {}

    def check(self, args):
        if args.quant_bits not in (None, 16):
            raise SwiftError("copy: --quant_bits must be 16")

    def export(self, job):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        CopyQuantizer.seen = {"calibration": job.calibration, "options": job.options, "bits": job.bits}
        model = AutoModelForCausalLM.from_pretrained(job.model_dir)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(job.options.copy_scale)
        model.save_pretrained(job.output_dir)
        AutoTokenizer.from_pretrained(job.model_dir).save_pretrained(job.output_dir)
        return ExportResult(
            format="hf", scheme="COPY", bits=16, weight_files=["model.safetensors"], loads_in=["transformers"]
        )


class FailingQuantizer(CopyQuantizer):
    name = "failing"

    def export(self, job):
        (job.output_dir / "config.json").write_text("{}")  # half-written
        raise RuntimeError("the library crashed half-way")


class CalibratingQuantizer(CopyQuantizer):
    name = "calibrating"
    calibration = "required"


class LoadTimeOnly(Quantizer):
    name = "loadonly"


@pytest.fixture()
def manager(monkeypatch):
    module = types.ModuleType("swift_quantize_fakes")
    for cls in (CopyQuantizer, FailingQuantizer, CalibratingQuantizer, LoadTimeOnly):
        setattr(module, cls.__name__, cls)

    @hookimpl
    def register_quantizers(register):
        for cls, export_time in (
            (CopyQuantizer, True),
            (FailingQuantizer, True),
            (CalibratingQuantizer, True),
        ):
            register(
                QuantizerDescriptor(
                    name=cls.name,
                    factory=f"swift_quantize_fakes:{cls.__name__}",
                    export_time=export_time,
                    options=CopyOptions,
                )
            )
        register(
            QuantizerDescriptor(name="loadonly", factory="swift_quantize_fakes:LoadTimeOnly", load_time=True)
        )

    module.register_quantizers = register_quantizers
    monkeypatch.setitem(sys.modules, "swift_quantize_fakes", module)
    return plugin_manager(plugin_source("quantize-fakes", "swift_quantize_fakes"))


def _args(manager, **values):
    from swift_core.cli.export_cmd import ExportArguments

    return build_arguments(ExportArguments, manager, **values)


def _data(tmp_path, n=12):
    from swift_core.demo.tasks import make_split

    rows, _ = make_split(n, 3, seed=1)
    path = tmp_path / "calib.jsonl"
    path.write_text("".join(json.dumps({"messages": r["messages"]}) + "\n" for r in rows))
    return path


def test_export_writes_a_verified_manifest_and_a_servable_folder(manager, tiny_qwen, tmp_path):
    from swift_core.export.quantize import MANIFEST, run_quantize
    from swift_core.models.checkpoint import Checkpoint

    out = tmp_path / "out"
    data = _data(tmp_path)
    args = _args(
        manager,
        model=str(tiny_qwen),
        quant_method="copy",
        dataset=[str(data)],
        output_dir=str(out),
        quant_n_samples=5,
        quant_eval_samples=4,
        quant_seqlen=24,
        copy_scale=1.0,
    )
    run_quantize(args, manager)
    seen = CopyQuantizer.seen
    assert len(seen["calibration"]) == 5 and all(2 <= len(ids) <= 24 for ids in seen["calibration"])
    assert isinstance(seen["options"], CopyOptions)
    manifest = json.loads((out / MANIFEST).read_text())
    assert (manifest["method"], manifest["scheme"], manifest["format"]) == ("copy", "COPY", "hf")
    assert manifest["calibration"]["rows"] == 5 and len(manifest["calibration"]["sha256"]) == 64
    check = manifest["verification"]
    assert check["eval_rows"] == 4 and check["ppl_before"] == pytest.approx(check["ppl_after"], rel=1e-5)
    assert check["same_tokens"] == 1.0 and check["size_before"] == check["size_after"]
    assert "torch" in manifest["library_versions"] and manifest["options"] == {"copy_scale": 1.0}
    checkpoint = Checkpoint.read(out)  # complete, and names its template for swift infer
    assert checkpoint.template == "qwen2_5" and not checkpoint.has_adapter


def test_a_damaging_quantizer_shows_in_the_verification(manager, tiny_qwen, tmp_path, capsys):
    from swift_core.export.quantize import MANIFEST, run_quantize

    out = tmp_path / "out"
    args = _args(
        manager,
        model=str(tiny_qwen),
        quant_method="copy",
        dataset=[str(_data(tmp_path))],
        output_dir=str(out),
        quant_eval_samples=4,
        copy_scale=0.3,
    )
    run_quantize(args, manager)
    check = json.loads((out / MANIFEST).read_text())["verification"]
    assert check["ppl_after"] != pytest.approx(check["ppl_before"], rel=1e-3)
    err = capsys.readouterr().err
    assert "perplexity" in err and "held-out rows" in err


def test_a_failed_export_leaves_nothing_and_does_not_block_a_rerun(manager, tiny_qwen, tmp_path):
    from swift_core.export.quantize import run_quantize

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="half-way"):
        run_quantize(
            _args(manager, model=str(tiny_qwen), quant_method="failing", output_dir=str(out)), manager
        )
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    run_quantize(
        _args(manager, model=str(tiny_qwen), quant_method="copy", output_dir=str(out), quant_eval_samples=0),
        manager,
    )
    assert (out / "swift_checkpoint.json").is_file()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"quant_method": "nope"}, "unknown quantizer 'nope'"),
        ({"quant_method": "loadonly"}, "quantizes only while a model loads for training"),
        ({"quant_method": None}, "pass --quant_method METHOD (installed export methods: "),
        ({"quant_method": "calibrating"}, "calibrates on data: pass --dataset"),
        ({"quant_method": "copy", "quant_bits": 4}, "--quant_bits must be 16"),
        ({"quant_method": "copy", "quant_n_samples": 0}, "--quant_n_samples must be positive"),
        ({"quant_method": "copy", "model": None}, "pass --model MODEL"),
        ({"quant_method": "copy", "model": "no-such-model-xyz"}, "unknown model 'no-such-model-xyz'"),
    ],
)
def test_bad_settings_are_refused_before_any_model_loads(manager, tmp_path, values, message):
    from swift_core.export.quantize import check_quantize_arguments

    args = _args(manager, **{"model": "Qwen/Qwen2.5-0.5B-Instruct", **values})  # resolves, never loads
    with pytest.raises(SwiftError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_quantize_arguments(args, manager)


def test_a_busy_output_folder_is_refused(manager, tiny_qwen, tmp_path):
    from swift_core.export.quantize import check_quantize_arguments

    out = tmp_path / "busy"
    out.mkdir()
    (out / "x").write_text("keep me")
    with pytest.raises(SwiftError, match="already exists and is not empty"):
        check_quantize_arguments(
            _args(manager, model=str(tiny_qwen), quant_method="copy", output_dir=str(out)), manager
        )


def _logits(folder, ids):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(folder).eval()(input_ids=ids).logits.float()


@pytest.mark.slow
def test_swift_quantize_bnb_from_the_cli_reloads_in_transformers(tiny_qwen, tmp_path):
    """plugins/swift-bnb exports a 4-bit NF4 checkpoint: the article's `swift quantize --method`."""
    pytest.importorskip("bitsandbytes")
    import torch

    out = tmp_path / "nf4"
    r = run_swift(
        "quantize",
        "--model",
        str(tiny_qwen),
        "--method",
        "bnb",
        "--quant_bits",
        "4",
        "--dataset",
        str(_data(tmp_path)),
        "--output_dir",
        str(out),
        "--quant_eval_samples",
        "4",
    )
    assert r.returncode == 0, r.stderr
    assert "perplexity" in r.stderr and "bnb (nf4) written to" in r.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "bitsandbytes"
    assert config["quantization_config"]["bnb_4bit_quant_type"] == "nf4"
    ids = torch.randint(3, 500, (1, 24), generator=torch.Generator().manual_seed(0))
    before, after = _logits(tiny_qwen, ids), _logits(out, ids)
    # NF4 of the tiny random model: measured max |diff| 0.02-0.03 on logits of scale ~0.3; bound 0.15
    assert (after - before).abs().max() < 0.15 and not torch.equal(before, after)


@pytest.mark.slow
def test_export_merges_a_lora_checkpoint_first_then_quantizes(tiny_qwen, tmp_path):
    pytest.importorskip("bitsandbytes")
    data = _data(tmp_path, 8)
    train = run_swift(
        "sft",
        "--model",
        str(tiny_qwen),
        "--dataset",
        str(data),
        "--output_dir",
        str(tmp_path / "run"),
        "--max_steps",
        "2",
        "--save_steps",
        "2",
        "--learning_rate",
        "5e-2",
        "--lora_dropout",
        "0",
    )
    assert train.returncode == 0, train.stderr
    checkpoint = next((tmp_path / "run").glob("v*/checkpoint-2"))
    out = tmp_path / "int8"
    r = run_swift(
        "export",
        "--adapters",
        str(checkpoint),
        "--quant_method",
        "bnb",
        "--quant_bits",
        "8",
        "--dataset",
        str(data),
        "--output_dir",
        str(out),
        "--quant_eval_samples",
        "2",
    )
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "quant_manifest.json").read_text())
    assert manifest["source"]["merged_adapter"] is True and manifest["scheme"] == "int8"
    assert not list(tmp_path.glob(".int8-*"))  # the merged intermediate is gone
    shutil.rmtree(out)
