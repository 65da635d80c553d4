"""swift-lmdeploy without an engine: registration (lmdeploy never imported), the error when the
engine is selected where LMDeploy is not installed, the entry point, and the text helpers.

LMDeploy needs a CUDA GPU, so nothing here imports it; the engine is tested against a fake of its
API in test_lmdeploy_engine.py and for real by bench/gpu/lmdeploy_smoke.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import pytest
from swift_lmdeploy.text import StopCutter, token_logprobs

from swift_core.errors import CapabilityLoadError


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_registers_the_engine_without_importing_lmdeploy():
    code = textwrap.dedent(
        """
        import sys
        from swift_core.plugins import PluginManager, PluginSource, builtin_sources
        from swift_core.policy import Policy
        source = PluginSource("lmdeploy", "swift_lmdeploy.plugin", "swift-lmdeploy", "0.1.0")
        m = PluginManager(Policy(), [*builtin_sources(), source])
        d = m.get("engines", "lmdeploy")
        assert d.factory == "swift_lmdeploy.engine:LmdeployEngine", d
        assert d.requires == ("lmdeploy",), d
        heavy = [n for n in ("lmdeploy", "torch", "transformers", "swift_lmdeploy.engine") if n in sys.modules]
        assert not heavy, heavy
        print(m.plugins["lmdeploy"].status)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "loaded"


def test_selecting_the_engine_without_lmdeploy_says_what_to_install(manager):
    descriptor = manager.get("engines", "lmdeploy")
    assert "swift-lmdeploy[gpu]" in descriptor.description
    if _installed("lmdeploy"):
        assert descriptor.missing_requirements() == []
        pytest.skip("LMDeploy is installed here: the missing-requirement error cannot show")
    with pytest.raises(CapabilityLoadError) as caught:
        manager.load("engines", "lmdeploy")
    assert str(caught.value) == (
        "engine 'lmdeploy' from plugin 'lmdeploy' (swift-lmdeploy) needs lmdeploy; "
        "install with: pip install 'lmdeploy'"
    )


def test_the_distribution_declares_its_entry_point():
    try:
        dist = metadata.distribution("swift-lmdeploy")
    except metadata.PackageNotFoundError:
        pytest.skip("swift-lmdeploy is not installed in this environment")
    points = [ep for ep in dist.entry_points if ep.group == "swift"]
    assert [(ep.name, ep.value) for ep in points] == [("lmdeploy", "swift_lmdeploy.plugin")]
    assert "lmdeploy>=0.7" in " ".join(dist.requires or [])  # only in the `gpu` extra
    assert not [r for r in dist.requires or [] if r.startswith("lmdeploy") and "extra" not in r]


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
