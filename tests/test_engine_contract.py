"""The engine contract of `swift_core.testing` (`check_engine`): every built-in engine (transformers) on a
tiny model keeps it, and so does a sound in-memory engine; broken in-memory engines, each breaking
one promise, are rejected (a battery that cannot fail proves nothing). The engine plugins run the
same battery against the fakes of their libraries (plugins/swift-lmdeploy, plugins/swift-sglang).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import sys
import types

import pytest

from swift_core.descriptors import EngineDescriptor
from swift_core.engines.prompt_ids import new_tokens_allowed
from swift_core.engines.protocol import (
    Choice,
    EngineCapabilities,
    EngineConfig,
    GenerationRequest,
    GenerationResponse,
    InferenceEngine,
    StreamChunk,
    TokenLogprob,
    UnsupportedRequest,
)
from swift_core.errors import SwiftError
from swift_core.hookspecs import hookimpl
from swift_core.testing import ContractFailure, builtin_manager, check_engine, plugin_manager, plugin_source

# -- the built-in engine ------------------------------------------------------------------------------


# Read at collection time: registering a built-in engine adds its test case. A rollout-only engine
# (GRPO's server mode: token ids in and out, tests/test_grpo_server.py) is not a full engine.
BUILTIN_ENGINES = [d.name for d in builtin_manager().registry("engines") if not d.rollout_only]


@pytest.mark.parametrize("name", BUILTIN_ENGINES)
def test_builtin_engine_keeps_the_contract(name, tiny_qwen):
    pytest.importorskip("torch")
    from swift_core.testing import one_thread

    with one_thread():
        report = check_engine(name, builtin_manager(), model_dir=tiny_qwen)
    assert not report.skipped  # the built-ins declare everything: every clause ran
    assert "close releases the engine" in report.passed
    assert "stream adds up to generate's answer and ends with its finish reason and usage" in report.passed


# -- in-memory engines ----------------------------------------------------------------------------------

VOCAB = 40
STOP = 0  # the stop token: it ends an answer and is counted, but is not part of the text


def _text(token: int) -> str:
    return chr(ord("a") + token % 26)


class Sound(InferenceEngine):
    """A deterministic engine that keeps the contract: each next token is a function of the context
    (token ids of the characters of the prompt), one letter of text per token."""

    max_model_len = 64

    def __init__(self, config: EngineConfig):
        self.config = config
        self.capabilities = EngineCapabilities(
            logprobs=True, multiple_choices=True, seed=True, max_top_logprobs=5
        )
        self.model_name = "sound"
        self.closed = False

    # the parts the broken engines below replace
    def prompt(self, request: GenerationRequest) -> list[int]:
        if request.messages is not None:
            return [ord(c) % VOCAB for m in request.messages for c in m["content"]] or [1]
        if isinstance(request.prompt, str):
            return [ord(c) % VOCAB for c in request.prompt] or [1]
        ids = list(request.prompt or [])
        if not ids or any(not 0 <= t < VOCAB for t in ids):
            raise UnsupportedRequest(f"prompt token ids must be in [0, {VOCAB})")
        return ids

    def allowed(self, ids: list[int], request: GenerationRequest) -> int:
        return new_tokens_allowed(len(ids), request.max_tokens, self.max_model_len)

    def next_token(self, context: list[int]) -> int:
        return (sum(context) * 7 + len(context)) % VOCAB

    def logprob(self, token: int, top: int) -> TokenLogprob:
        alternatives = [(_text(token), -0.5)] + [(_text(token + k), -1.0 - k) for k in range(1, top)]
        return TokenLogprob(_text(token), token, -0.5, alternatives[:top])

    def answer(self, request: GenerationRequest) -> GenerationResponse:
        ids = self.prompt(request)
        allowed = self.allowed(ids, request)
        choices, completion = [], 0
        for index in range(request.n):
            context, out, finish = list(ids), [], "length"
            for _ in range(allowed):
                token = self.next_token(context)
                completion += 1
                if token == STOP:
                    finish = "stop"
                    break
                out.append(token)
                context.append(token)
            logprobs = [self.logprob(t, request.top_logprobs) for t in out] if request.logprobs else None
            choices.append(Choice(index, "".join(map(_text, out)), finish, out, logprobs))
        return GenerationResponse(choices, len(ids), completion)

    # the protocol
    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        self.check_request(request)
        await asyncio.sleep(0)
        return self.answer(request)

    async def stream(self, request: GenerationRequest):
        response = await self.generate(request)
        for choice in response.choices:
            tokens = choice.token_ids
            counted = len(tokens) + (choice.finish_reason == "stop")
            for k in range(max(1, len(tokens))):
                last = k >= len(tokens) - 1
                yield StreamChunk(
                    choice.index,
                    _text(tokens[k]) if tokens else "",
                    choice.finish_reason if last else None,
                    choice.logprobs[k : k + 1] if choice.logprobs is not None else None,
                    response.prompt_tokens,
                    counted if last else k + 1,
                )

    async def close(self) -> None:
        self.closed = True


def _not_an_engine(config):
    return types.SimpleNamespace(generate=None)


class DictCapabilities(Sound):
    def __init__(self, config):
        super().__init__(config)
        self.capabilities = {"logprobs": True}


class AdaptersWithoutLora(Sound):
    def adapter_names(self):
        return ["mine"]


class Lax(Sound):
    """Takes a negative temperature for greedy decoding."""

    def check_request(self, request):
        super().check_request(dataclasses.replace(request, temperature=abs(request.temperature)))


class WrongError(Sound):
    """Refuses top_p above 1 with a SwiftError that is not an UnsupportedRequest."""

    def check_request(self, request):
        if request.top_p > 1:
            raise SwiftError("top_p is too large")
        super().check_request(request)


class AcceptsN(Sound):
    """Declares no n > 1, but lets it through (and answers n choices)."""

    def __init__(self, config):
        super().__init__(config)
        self.capabilities = dataclasses.replace(self.capabilities, multiple_choices=False)

    def check_request(self, request):
        super().check_request(dataclasses.replace(request, n=min(request.n, 1)))


class Overclaiming(Sound):
    """Declares per-request seeds, but refuses them."""

    def check_request(self, request):
        if request.seed is not None:
            raise UnsupportedRequest("no seeds here")
        super().check_request(request)


class Unchecked(Sound):
    """Its generate answers whatever it is given."""

    async def generate(self, request):
        return self.answer(request)


class Nondeterministic(Sound):
    calls = 0

    def next_token(self, context):
        Nondeterministic.calls += 1
        return (super().next_token(context) + Nondeterministic.calls) % (VOCAB - 1) + 1


class IgnoresSeed(Sound):
    """Declares per-request seeds, but samples from an unseeded generator."""

    def answer(self, request):
        response = super().answer(request)
        if request.temperature > 0:
            for choice in response.choices:
                choice.token_ids = [random.randrange(1, VOCAB) for _ in choice.token_ids]
                choice.text = "".join(map(_text, choice.token_ids))
        return response


class IgnoresMaxTokens(Sound):
    def allowed(self, ids, request):
        return request.max_tokens + 3


class NoUsage(Sound):
    def answer(self, request):
        return dataclasses.replace(super().answer(request), prompt_tokens=0)


class StreamDisagrees(Sound):
    async def stream(self, request):
        async for chunk in super().stream(request):
            yield dataclasses.replace(chunk, text=chunk.text.upper())


class NoFinish(Sound):
    async def stream(self, request):
        async for chunk in super().stream(request):
            yield dataclasses.replace(chunk, finish_reason=None)


class StreamWithoutUsage(Sound):
    async def stream(self, request):
        async for chunk in super().stream(request):
            yield dataclasses.replace(chunk, completion_tokens=0)


class OneIndex(Sound):
    """Answers n choices, all indexed 0."""

    def answer(self, request):
        response = super().answer(request)
        for choice in response.choices:
            choice.index = 0
        return response


class ShortLogprobs(Sound):
    """Leaves out the logprob of the last token."""

    def answer(self, request):
        response = super().answer(request)
        for choice in response.choices:
            if choice.logprobs:
                choice.logprobs = choice.logprobs[:-1]
        return response


class Truncating(Sound):
    """Cuts a long prompt silently instead of refusing it."""

    def prompt(self, request):
        return super().prompt(request)[-(self.max_model_len - 1) :]


class FailingClose(Sound):
    async def close(self):
        raise RuntimeError("the worker is gone")


class Hanging(Sound):
    async def generate(self, request):
        self.check_request(request)
        await asyncio.sleep(3600)


# name -> (factory, the detail the battery must report); None: keeps the contract
ENGINES = {
    "sound": (Sound, None),
    "not-an-engine": (_not_an_engine, "not a swift_core.engines.protocol.InferenceEngine"),
    "dict-capabilities": (DictCapabilities, "capabilities is a dict, not an EngineCapabilities"),
    "adapters-without-lora": (AdaptersWithoutLora, "but capabilities.lora is False"),
    "lax": (Lax, "check_request for temperature=-1.0: accepted it"),
    "wrong-error": (WrongError, "which the server answers 503 instead of 400"),
    "accepts-n": (
        AcceptsN,
        "check_request for a chat request (max_tokens=8, temperature=0.0, n=2): accepted it",
    ),
    "overclaiming": (Overclaiming, "which capabilities.seed declares"),
    "unchecked": (Unchecked, "generate for a chat request (max_tokens=8, temperature=-1.0): accepted it"),
    "nondeterministic": (Nondeterministic, "temperature 0 answered"),
    "ignores-seed": (IgnoresSeed, "seed=1234 answered"),
    "ignores-max-tokens": (IgnoresMaxTokens, "max_tokens=8, but the answer has 11 completion tokens"),
    "no-usage": (NoUsage, "prompt_tokens is 0 for a chat prompt"),
    "stream-disagrees": (StreamDisagrees, "the stream's text is"),
    "no-finish": (NoFinish, "the last chunk's finish_reason is None"),
    "stream-without-usage": (StreamWithoutUsage, "the stream reports usage"),
    "one-index": (OneIndex, "n=2 gave choices indexed [0, 0]"),
    "short-logprobs": (ShortLogprobs, "logprobs are for tokens"),
    "truncating": (Truncating, "answered it, not PromptTooLong"),
    "failing-close": (FailingClose, "close releases the engine: raised RuntimeError: the worker is gone"),
    "hanging": (Hanging, "did not finish within 0.5 s"),
}


@pytest.fixture()
def fakes(monkeypatch):
    """A plugin `engine-fakes` registering every in-memory engine, from an in-memory module."""
    module = types.ModuleType("swift_engine_fakes")

    def attr(name: str) -> str:
        return "F_" + name.replace("-", "_")

    for name, (factory, _) in ENGINES.items():
        setattr(module, attr(name), factory)

    @hookimpl
    def register_engines(register):
        for name in ENGINES:
            register(EngineDescriptor(name=name, factory=f"swift_engine_fakes:{attr(name)}"))

    module.register_engines = register_engines
    monkeypatch.setitem(sys.modules, "swift_engine_fakes", module)
    return plugin_manager(plugin_source("engine-fakes", "swift_engine_fakes", "swift-engine-fakes"))


CONFIG = EngineConfig(model="in-memory")


def test_a_sound_in_memory_engine_keeps_the_contract(fakes):
    report = check_engine("sound", fakes, config=CONFIG)
    assert report.capability == "engine 'sound' (swift-engine-fakes)"
    assert [name for name, _ in report.skipped] == []
    assert "a prompt that leaves no room for a new token is refused with PromptTooLong" in report.passed


def test_clauses_an_engine_does_not_declare_are_skipped(fakes):
    class Plain(Sound):
        """No logprobs, one choice, no known context."""

        def __init__(self, config):
            super().__init__(config)
            self.capabilities = EngineCapabilities()
            self.max_model_len = 0

        def allowed(self, ids, request):
            return request.max_tokens

    report = check_engine("sound", fakes, factory=Plain, config=CONFIG)
    assert [name for name, _ in report.skipped] == [
        "a seeded sampled request gives the same answer twice, and streams it",
        "n=2 gives two choices, indexed 0 and 1, in generate and in stream",
        "logprobs: one per answer token, with the alternatives asked for, in generate and in stream",
        "a prompt that leaves no room for a new token is refused with PromptTooLong",
    ]


@pytest.mark.parametrize("name", [n for n, (_, detail) in ENGINES.items() if detail])
def test_the_battery_rejects_a_broken_engine(name, fakes):
    detail = ENGINES[name][1]
    with pytest.raises(ContractFailure, match=re.escape(detail)) as info:
        check_engine(name, fakes, config=CONFIG, timeout=0.5)
    assert info.value.capability == f"engine {name!r} (swift-engine-fakes)"


def test_a_failing_engine_is_closed_all_the_same(fakes):
    engines = []

    def build(config):
        engines.append(StreamDisagrees(config))
        return engines[-1]

    with pytest.raises(ContractFailure):
        check_engine("sound", fakes, factory=build, config=CONFIG)
    assert engines[0].closed
