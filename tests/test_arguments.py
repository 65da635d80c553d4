from dataclasses import dataclass
from typing import Literal

import pytest

from swift_core.config import arg, format_help, parse_arguments
from swift_core.errors import SwiftError


@dataclass
class TrainArgs:
    model: str = arg(help="Model id or folder")
    learning_rate: float = arg(1e-4, help="Peak learning rate")
    tuner_type: Literal["lora", "full"] = arg("lora", help="Tuner", aliases=("train_type",))
    use_lora: bool = arg(False, help="Shorthand for LoRA")
    max_steps: int = arg(-1, help="Steps")
    dataset: list[str] = arg([], help="Datasets")
    seed: int | None = arg(None, help="Seed")


def test_flags_types_and_aliases():
    args = parse_arguments(
        TrainArgs,
        [
            "--model",
            "qwen",
            "--learning_rate",
            "2e-5",
            "--train_type",
            "full",
            "--max-steps=7",
            "--use_lora",
            "--dataset",
            "a.jsonl",
            "b.jsonl",
        ],
    )
    assert args == TrainArgs("qwen", 2e-5, "full", True, 7, ["a.jsonl", "b.jsonl"], None)


def test_config_file_first_then_flags_override(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("model: tiny\nlearning_rate: 1e-3\ntrain_type: full\ndataset: [x.jsonl]\nseed: 3\n")
    args = parse_arguments(TrainArgs, [str(cfg), "--learning_rate", "5e-4"])
    assert args.model == "tiny" and args.learning_rate == 5e-4 and args.tuner_type == "full"
    assert args.dataset == ["x.jsonl"] and args.seed == 3


def test_json_config(tmp_path):
    cfg = tmp_path / "train.json"
    cfg.write_text('{"model": "m", "use_lora": "true", "max_steps": 3}')
    args = parse_arguments(TrainArgs, [str(cfg)])
    assert args.use_lora is True and args.max_steps == 3


def test_unknown_flag_suggests_the_nearest():
    with pytest.raises(SwiftError, match=r"unknown argument --lerning_rate .*did you mean --learning_rate"):
        parse_arguments(TrainArgs, ["--model", "m", "--lerning_rate", "1"])


def test_unknown_key_in_config_file_names_the_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: m\nmax_step: 3\n")
    with pytest.raises(SwiftError, match=rf"unknown argument 'max_step' \(config file {cfg}\).*max_steps"):
        parse_arguments(TrainArgs, [str(cfg)])


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--model", "m", "--max_steps", "1.5"], "expected an integer"),
        (["--model", "m", "--learning_rate", "fast"], "expected a number"),
        (["--model", "m", "--tuner_type", "qlora"], "not one of lora, full"),
        (["--model", "m", "--use_lora", "maybe"], "expected true or false"),
        (["--model", "m", "--max_steps", "1", "2"], "takes one value"),
        (["--model"], "needs a value"),
        ([], "missing required argument"),
        (["model", "m"], "unexpected argument 'model'"),
    ],
)
def test_bad_values_are_clear_errors(argv, fragment):
    with pytest.raises(SwiftError, match=fragment):
        parse_arguments(TrainArgs, argv)


def test_malformed_yaml_names_file_and_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model: m\nlearning_rate: [1\n")
    with pytest.raises(SwiftError, match=rf"config file {cfg}, line \d+: invalid YAML"):
        parse_arguments(TrainArgs, [str(cfg)])


def test_comma_separated_list_and_none():
    args = parse_arguments(TrainArgs, ["--model", "m", "--dataset", "a,b", "--seed", "none"])
    assert args.dataset == ["a", "b"] and args.seed is None


def test_help_lists_fields_defaults_and_aliases():
    text = format_help(TrainArgs, prog="swift sft")
    assert "--learning_rate FLOAT" in text and "[default: 0.0001]" in text
    assert "[aliases: --train_type]" in text and "--tuner_type {lora,full}" in text


def test_a_repeated_list_flag_adds_its_values():
    """`--dataset a --dataset b` trains on both (it used to keep only b, silently)."""
    from swift_core.config.arguments import parse_arguments
    from swift_core.config.train_args import TrainArguments

    args = parse_arguments(
        TrainArguments, ["--model", "m", "--dataset", "a", "--dataset", "b,c", "--max_steps", "3"]
    )
    assert args.dataset == ["a", "b", "c"]
