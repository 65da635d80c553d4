"""swift-lmdeploy without an engine: registration (lmdeploy never imported), the error when the
engine is selected where LMDeploy is not installed, the entry point, and the text helpers.

LMDeploy needs a CUDA GPU, so nothing here imports it; the engine is tested against a fake of its
API in test_lmdeploy_engine.py and for real by bench/gpu/lmdeploy_smoke.py.
"""

from __future__ import annotations

from swift_lmdeploy.text import StopCutter, token_logprobs

from swift_core.testing import (
    assert_entry_point,
    assert_missing_library_says_what_to_install,
    assert_registers_without_importing,
)


def test_registers_the_engine_without_importing_lmdeploy(plugin):
    assert_registers_without_importing(plugin)


def test_selecting_the_engine_without_lmdeploy_says_what_to_install(plugin, manager):
    assert_missing_library_says_what_to_install(plugin, manager)


def test_the_distribution_declares_its_entry_point(plugin):
    assert_entry_point(plugin)


def test_stop_cutter_holds_back_what_may_start_a_stop_string():
    cutter = StopCutter(["STOP", "\n\n"])
    shown = [cutter.feed(d) for d in ("Hello ", "wor", "ld S", "TO", "P and more")]
    assert "".join(shown) == "Hello world " and cutter.stopped
    assert cutter.feed("late") == "" and cutter.flush() == ""
    # nothing is shown that the final text would not have
    assert all("S" not in s for s in shown)
    plain = StopCutter([])
    assert [plain.feed(d) for d in ("a", "b")] == ["a", "b"] and plain.flush() == ""
    tail = StopCutter(["xyz"])
    assert tail.feed("abcx") == "ab" and not tail.stopped and tail.flush() == "cx"
    across = StopCutter(["\n\n"])
    assert across.feed("one\n") == "one" and across.feed("\ntwo") == "" and across.stopped
    earliest = StopCutter(["cd", "b"])
    assert earliest.feed("abcd") == "a"  # the stop string that starts first wins


def test_token_logprobs_ranks_the_top_and_keeps_the_chosen():
    entries = [{7: -0.5, 3: -0.1, 9: -2.0}, {4: -0.2}]
    out = token_logprobs([7, 4], entries, 2, lambda t: f"<{t}>")
    assert [(e.token, e.token_id, e.logprob) for e in out] == [("<7>", 7, -0.5), ("<4>", 4, -0.2)]
    assert out[0].top == [("<3>", -0.1), ("<7>", -0.5)] and out[1].top == [("<4>", -0.2)]
    assert token_logprobs([1], [{}], 0, str)[0].logprob is None
