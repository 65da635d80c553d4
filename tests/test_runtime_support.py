"""What a runtime declares works on it (`RuntimeSupport`), and how the pipelines' checks use it:
one user error naming every refused part of a command, never a device-name comparison. The
accelerator runtimes' own declarations are tested in hw_adapters/*/tests against fakes."""

import pytest

from swift_core.errors import SwiftError
from swift_core.runtimes.base import HardwareRuntime
from swift_core.runtimes.selection import refuse_unsupported
from swift_core.runtimes.support import Feature, RuntimeSupport, Workload
from swift_core.testing.managers import builtin_manager


class Declared(HardwareRuntime):
    """A runtime with a declaration of its own (as a plugin would write it)."""

    name = device_type = "fake"

    def is_available(self):
        return True

    def device_count(self):
        return 2

    def supported_dtypes(self):
        return ["float16", "float32"]

    def support(self):
        return RuntimeSupport(
            dtypes=("float16", "float32"),
            dtype_notes={"bfloat16": "this chip has no bf16 units"},
            quantized_training=Feature.no("no 4-bit kernels"),
            flash_attention=Feature.no("no fused attention"),
            fused_optimizers=Feature.no("no fused AdamW"),
            distributed=Feature.no("one device only"),
            engines={"fastengine": "its kernels are CUDA-only"},
            strategies={"zero3": "no all-gather"},
        )


def test_everything_asked_that_works_passes():
    Declared().check(Workload(dtype="float16", engine="transformers"))
    Declared().check(Workload())


def test_every_refused_part_is_named_with_its_reason_in_one_error():
    with pytest.raises(SwiftError) as err:
        Declared().check(
            Workload(
                dtype="bfloat16",
                quantizer="bnb",
                engine="fastengine",
                flash_attention=True,
                fused_optimizer=True,
                world_size=4,
            )
        )
    message = str(err.value)
    assert message.startswith("not supported on the fake runtime: ")
    for part in (
        "--torch_dtype bfloat16: this chip has no bf16 units; use float16, float32",
        "--quant_method bnb (QLoRA, a quantized base): no 4-bit kernels",
        "flash attention: no fused attention",
        "a fused optimizer: no fused AdamW",
        "--engine fastengine: its kernels are CUDA-only",
        "4 processes: one device only",
    ):
        assert part in message, part


def test_a_named_strategy_refusal_wins_over_the_generic_one():
    refusals = Declared().support().refusals(Workload(strategy="zero3"))
    assert refusals == ["strategy zero3: no all-gather"]
    assert Declared().support().refusals(Workload(strategy="ddp")) == ["strategy ddp: one device only"]


def test_the_default_declaration_is_the_dtypes_and_no_flash_attention():
    class Plain(Declared):
        support = HardwareRuntime.support

    support = Plain().support()
    assert support.dtypes == ("float16", "float32") and support.quantized_training.supported
    assert support.refusals(Workload(dtype="float32", quantizer="bnb", world_size=8)) == []
    assert support.refusals(Workload(dtype="bfloat16")) == ["--torch_dtype bfloat16: use float16, float32"]
    assert not support.flash_attention.supported
    assert Plain().trainer_arguments("float16") == {"bf16": False, "fp16": True}


def test_no_fused_optimizer_means_plain_adamw_in_the_trainer():
    assert Declared().trainer_arguments("float16") == {"bf16": False, "fp16": True, "optim": "adamw_torch"}


def test_describe_reports_the_declaration_with_its_reasons():
    described = Declared().describe()
    assert described["support"]["quantized_training"] == "no (no 4-bit kernels)"
    assert described["support"]["engines_refused"] == {"fastengine": "its kernels are CUDA-only"}
    assert Feature.yes().describe() == "yes" and Feature.yes("sm_90").describe() == "yes (sm_90)"


def test_engine_checks_leave_devices_without_a_usable_runtime_to_the_engine():
    manager = builtin_manager()
    refuse_unsupported("cuda:1", Workload(engine="vllm"), manager)  # no cuda runtime installed here
    refuse_unsupported("auto", Workload(engine="vllm"), manager)  # the CPU refuses no engine
    refuse_unsupported("cpu", Workload(engine="transformers"), manager)
