"""Capabilities carry their own options: flags, YAML keys, help groups, conflicts and policy.

Plugins here are small modules written into a temporary folder and loaded through the real
plugin manager, so registration, rollback and policy go through the same code as installed ones.
"""

from __future__ import annotations

import dataclasses
import textwrap
import types

import pytest

from swift_core.config.arguments import format_help, parse_arguments
from swift_core.config.options import build_arguments, options_for, with_capability_options
from swift_core.config.rlhf_args import RLHFArguments
from swift_core.config.train_args import TrainArguments
from swift_core.descriptors import TunerDescriptor
from swift_core.errors import SwiftError
from swift_core.plugins import PluginManager, PluginSource, builtin_sources
from swift_core.policy import Policy

PLUGIN = """
from dataclasses import dataclass

from swift_core import hookimpl
from swift_core.config import arg
from swift_core.descriptors import TunerDescriptor


@dataclass(kw_only=True)
class Options:
    {fields}


@hookimpl
def register_tuners(register):
    register(TunerDescriptor(name="{name}", factory="x:y", options=Options))
"""


def _plugin(tmp_path, monkeypatch, module: str, name: str, fields: str) -> PluginSource:
    (tmp_path / f"{module}.py").write_text(PLUGIN.format(name=name, fields=textwrap.dedent(fields).strip()))
    monkeypatch.syspath_prepend(str(tmp_path))
    return PluginSource(module, module, f"dist-{module}", "1.0")


def _manager(*extra: PluginSource, policy: Policy | None = None) -> PluginManager:
    return PluginManager(policy or Policy(), [*builtin_sources(), *extra])


def test_a_plugin_option_is_a_flag_a_yaml_key_and_in_args_json(tmp_path, monkeypatch):
    src = _plugin(tmp_path, monkeypatch, "opta", "deep", 'deep_depth: int = arg(3, help="how deep")')
    manager = _manager(src)
    cls = with_capability_options(TrainArguments, manager)
    assert issubclass(cls, TrainArguments)
    args = parse_arguments(
        cls, ["--model", "m", "--tuner_type", "deep", "--deep_depth", "7", "--lora_r", "4"]
    )
    assert (args.deep_depth, args.lora_rank) == (7, 4)  # the plugin's flag and a built-in's ms-swift alias
    config = tmp_path / "c.yaml"
    config.write_text("model: m\ndeep_depth: 9\n")
    assert parse_arguments(cls, [str(config)]).deep_depth == 9
    assert dataclasses.asdict(args)["deep_depth"] == 7
    help_text = format_help(cls, prog="swift sft")
    assert (
        "Options of tuner deep (--tuner_type):\n  --deep_depth INT\n      how deep [default: 3]" in help_text
    )
    # the command's own groups come first, in their order
    order = [help_text.index(f"{g} arguments:") for g in ("Model", "Data", "Training", "Tuner", "Output")]
    assert order == sorted(order) and order[-1] < help_text.index("Options of")


def test_blocked_plugin_takes_its_options_away(tmp_path, monkeypatch):
    src = _plugin(tmp_path, monkeypatch, "optb", "deep", "deep_depth: int = arg(3)")
    manager = _manager(src, policy=Policy(disabled=frozenset({"optb"})))
    cls = with_capability_options(TrainArguments, manager)
    with pytest.raises(SwiftError, match="unknown argument --deep_depth"):
        parse_arguments(cls, ["--model", "m", "--deep_depth", "7"])
    assert "deep_depth" not in format_help(cls, prog="swift sft")
    # blocking the built-in tuners removes the LoRA flags too
    no_builtin = with_capability_options(
        TrainArguments, _manager(policy=Policy(disabled=frozenset({"tuners"})))
    )
    with pytest.raises(SwiftError, match="unknown argument --lora_rank"):
        parse_arguments(no_builtin, ["--model", "m", "--lora_rank", "4"])


def test_the_same_option_declared_alike_is_one_flag_for_both(tmp_path, monkeypatch):
    a = _plugin(tmp_path, monkeypatch, "optc1", "one", "shared_width: int = arg(4)")
    b = _plugin(tmp_path, monkeypatch, "optc2", "two", "shared_width: int = arg(4)")
    manager = _manager(a, b)
    assert manager.plugins["optc2"].status == "loaded"
    cls = with_capability_options(TrainArguments, manager)
    assert parse_arguments(cls, ["--model", "m", "--shared_width", "8"]).shared_width == 8
    assert "[also for: two]" in format_help(cls, prog="swift sft")


def test_an_option_declared_differently_fails_the_second_plugin_naming_both(tmp_path, monkeypatch):
    a = _plugin(tmp_path, monkeypatch, "optd1", "one", "shared_width: int = arg(4)")
    b = _plugin(tmp_path, monkeypatch, "optd2", "two", "shared_width: float = arg(0.5)")
    manager = _manager(a, b)
    info = manager.plugins["optd2"]
    assert info.status == "failed"
    assert "--shared_width" in info.reason and "'optd1'" in info.reason and "'optd2'" in info.reason
    assert "two" not in manager.registry("tuners")  # rolled back
    assert (
        parse_arguments(with_capability_options(TrainArguments, manager), ["--model", "m"]).shared_width == 4
    )


def test_an_option_shadowing_a_command_flag_is_a_clear_error(tmp_path, monkeypatch):
    src = _plugin(tmp_path, monkeypatch, "opte", "shadow", "max_steps: int = arg(5)")
    with pytest.raises(SwiftError, match=r"option --max_steps of tuner shadow \(plugin opte\) clashes"):
        with_capability_options(TrainArguments, _manager(src))


def test_options_need_defaults_and_must_be_dataclasses():
    @dataclasses.dataclass
    class NoDefault:
        depth: int

    with pytest.raises(ValueError, match="option 'depth' of NoDefault has no default"):
        TunerDescriptor(name="x", factory="a:b", options=NoDefault)
    with pytest.raises(ValueError, match="options must be a dataclass type"):
        TunerDescriptor(name="x", factory="a:b", options=dict)


def test_options_for_reads_parsed_flags_or_falls_back_to_defaults():
    from swift_core.tuners.options import LoraOptions

    assert options_for(types.SimpleNamespace(lora_rank=16), LoraOptions).lora_rank == 16
    assert options_for(types.SimpleNamespace(), LoraOptions).lora_alpha == 32
    args = build_arguments(TrainArguments, model="m", lora_alpha=4)
    assert options_for(args, LoraOptions).lora_alpha == 4
    with pytest.raises(SwiftError, match="no_such_option"):
        build_arguments(TrainArguments, model="m", no_such_option=1)


def test_rlhf_takes_the_loss_options_and_sft_does_not():
    manager = _manager()
    rlhf = with_capability_options(RLHFArguments, manager)
    args = parse_arguments(rlhf, ["--model", "m", "--rlhf_type", "simpo", "--simpo_gamma", "1.5"])
    assert args.simpo_gamma == 1.5 and args.label_smoothing == 0.0
    text = format_help(rlhf, prog="swift rlhf")
    assert "Options of alignment loss simpo (--rlhf_type):" in text and "--desirable_weight FLOAT" in text
    with pytest.raises(SwiftError, match="unknown argument --simpo_gamma"):
        parse_arguments(
            with_capability_options(TrainArguments, manager), ["--model", "m", "--simpo_gamma", "1"]
        )


def test_quantizer_options_follow_when_the_quantizer_runs(tmp_path, monkeypatch):
    """Training takes the options of load-time quantizers only; export those of export-time ones."""
    from swift_core.cli.export_cmd import ExportArguments

    (tmp_path / "optq.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            from swift_core import hookimpl
            from swift_core.config import arg
            from swift_core.descriptors import QuantizerDescriptor

            @dataclass(kw_only=True)
            class ExportOnly:
                eo_level: int = arg(3)

            @dataclass(kw_only=True)
            class LoadOnly:
                lo_level: int = arg(3)

            @hookimpl
            def register_quantizers(register):
                register(QuantizerDescriptor(name="eo", factory="x:y", export_time=True, options=ExportOnly))
                register(QuantizerDescriptor(name="lo", factory="x:y", load_time=True, options=LoadOnly))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    manager = _manager(PluginSource("optq", "optq", "dist-optq", "1.0"))
    train = {f.name for f in dataclasses.fields(with_capability_options(TrainArguments, manager))}
    export = {f.name for f in dataclasses.fields(with_capability_options(ExportArguments, manager))}
    assert "lo_level" in train and "eo_level" not in train
    assert "eo_level" in export and "lo_level" not in export


def test_rlhf_help_names_the_flag_that_selects_its_rollout_engine():
    """Engine options reach `swift rlhf` for GRPO's rollouts, selected by --rollout_engine there."""
    manager = PluginManager(sources=builtin_sources())
    text = format_help(with_capability_options(RLHFArguments, manager), prog="swift rlhf")
    assert "Options of engine server (--rollout_engine):" in text
    assert "(--engine):" not in text


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--use_vllm", "--rollout_engine vllm"),
        ("--vllm_server_host", "--rollout_server_url http://HOST:PORT"),
    ],
)
def test_ms_swift_and_trl_rollout_flags_say_what_to_write_here(flag, expected):
    with pytest.raises(SwiftError) as err:
        parse_arguments(RLHFArguments, ["--model", "m", "--rlhf_type", "grpo", flag, "x"])
    assert f"unknown argument {flag}" in str(err.value) and expected in str(err.value)
