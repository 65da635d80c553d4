"""swift-bnb keeps the quantizer contract of `swift_core.testing` (the battery every quantizer
passes): 4-bit and 8-bit, loaded on the CPU and trained with a LoRA adapter.

Everything comes from the installed swift-core's test kit, nothing from the Swift repository's
tests/ folder: this distribution tests on its own.
"""

from __future__ import annotations

import pytest

from swift_core.testing import (
    check_quantizer,
    one_thread,
    plugin_manager,
    plugin_source,
    quantizer_args,
    setup_test_environment,
    tiny_model,
)

setup_test_environment()
pytest.importorskip("torch")
pytest.importorskip("bitsandbytes")


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def manager():
    return plugin_manager(plugin_source("bnb", "swift_bnb.plugin", "swift-bnb"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("bnb-contract") / "qwen")


@pytest.mark.parametrize("bits", [4, 8])
def test_bnb_keeps_the_quantizer_contract(bits, manager, model_dir):
    args = quantizer_args(
        manager.get("quantizers", "bnb"),
        quant_bits=bits,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
    )
    good = (bits, 12 - bits)  # the first one is loaded; both must pass check
    report = check_quantizer("bnb", manager, args=args, good_bits=good, model_dir=model_dir)
    assert not report.skipped
    assert "prepare_for_training gives a model that trains with an adapter" in report.passed
