"""The engine contract: what every registered inference engine (built-in or a plugin's) must do.

`swift infer` and `swift deploy` never branch on an engine's name: they build it with the
descriptor's factory from an `EngineConfig`, read its `EngineCapabilities`, and talk to it through
`swift_core.engines.protocol.InferenceEngine` on one event loop. So each promise below is
something the pipelines and the OpenAI server rely on for any engine:

- the factory builds an `InferenceEngine` from an `EngineConfig`; `capabilities` is an
  `EngineCapabilities`, `model_name` a string, `max_model_len` a count, and `adapter_names()`
  names adapters only when `capabilities.lora` says requests may choose one;
- `check_request` accepts plain requests (chat, a sampled chat, a text prompt, token ids) and what
  the capabilities declare (n > 1, logprobs up to `max_top_logprobs`, prompt logprobs, a seed,
  repetition_penalty, top_k, each served adapter);
- `check_request` refuses values no engine can mean (negative temperature, top_p above 1, n = 0,
  ...) and what the capabilities say is unsupported (logprobs when `logprobs` is False, n > 1
  when `multiple_choices` is False, ...) with `UnsupportedRequest`, which the server answers
  400; any other error reaches the user as a 503 or a 500;
- `generate` and `stream` refuse those requests too (they check what they are given);
- greedy `generate` (temperature 0) gives the same answer twice, one choice indexed 0, at most
  `max_tokens` completion tokens and a finish reason of "stop" or "length", and reports usage:
  the prompt's tokens (a prompt of token ids counts exactly its ids) and at least the answer's;
- `stream` of the same request gives `StreamChunk`s whose texts add up to `generate`'s, the last
  one with `generate`'s finish reason and usage (what the server reports for a stream), none after;
- with `seed`: a seeded sampled request gives the same answer twice, and the same in `stream`
  (with a tiny random model greedy answers often repeat one token: this one varies);
- with `multiple_choices`: n = 2 gives two choices indexed 0 and 1, in `generate` and in `stream`;
- with `logprobs`: one `TokenLogprob` per answer token, with `top_logprobs` alternatives, the same
  answer as without logprobs, and the stream's logprobs add up to `generate`'s;
- with a `max_model_len`: a prompt that leaves no room for one new token is refused with
  `PromptTooLong` (HTTP 400, `context_length_exceeded`), in `generate` and in `stream`;
- `close()` releases the engine without an error.

Everything after the factory runs on ONE event loop, as in the server (some engines bind to the
loop they first run on), each request with a time limit (`timeout`), so a hanging engine fails a
clause instead of the test run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from swift_core.testing.contract import Checker, ContractReport

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
# A prompt of token ids: small ids exist in every vocabulary.
PROMPT_IDS = (5, 6, 7, 8)


def engine_config(descriptor: Any, model: str | Path, **overrides: Any) -> Any:
    """An `EngineConfig` as `swift infer` builds it from default flags: the model folder, and the
    engine's options dataclass (`descriptor.options`) at its defaults; then `overrides`."""
    from swift_core.config.option_schema import options_for
    from swift_core.engines.protocol import EngineConfig

    options = getattr(descriptor, "options", None)
    values: dict[str, Any] = {
        "model": str(model),
        "options": options_for(object(), options) if options is not None else None,
    }
    values.update(overrides)
    return EngineConfig(**values)


def check_engine(
    name: str,
    manager: Any = None,
    *,
    config: Any = None,
    factory: Callable[[Any], Any] | None = None,
    model_dir: str | Path | None = None,
    messages: list[dict[str, Any]] | None = None,
    prompt_ids: Sequence[int] = PROMPT_IDS,
    max_tokens: int = 8,
    timeout: float = 120.0,
    work_dir: str | Path | None = None,
) -> ContractReport:
    """Run the engine contract on the engine registered as `name`; raise `ContractFailure` at the
    first broken clause, else return the report (capability-dependent clauses the engine does not
    declare are reported as skipped).

    `manager`: the plugin manager that registers the engine (default: the built-ins only).
    `config`: the `EngineConfig` to build it with (default: `engine_config(descriptor, model_dir)`).
    `model_dir`: the model for the default config (default: a tiny Qwen2.5 built in `work_dir`).
    `factory`: builds the engine from the config instead of the descriptor's factory (for an engine
    run against a fake of its library, which the descriptor's requirement check would refuse).
    `messages`, `prompt_ids`, `max_tokens`: the chat, the token-id prompt and the answer length the
    requests use. `timeout`: seconds each request (or whole stream) may take.

    Call it from synchronous code: it runs the engine on an event loop of its own (`asyncio.run`).
    """
    from swift_core.testing.managers import builtin_manager

    manager = manager if manager is not None else builtin_manager()
    descriptor = manager.get("engines", name)
    origin = f" ({descriptor.distribution})" if descriptor.distribution else ""
    check = Checker(f"engine {descriptor.name!r}{origin}")
    with contextlib.ExitStack() as stack:
        if config is None:
            if model_dir is None:
                from swift_core.testing.models import tiny_model

                if work_dir is None:
                    work_dir = stack.enter_context(
                        tempfile.TemporaryDirectory(prefix="swift-engine-contract-")
                    )
                model_dir = tiny_model(Path(work_dir) / "base")
            config = engine_config(descriptor, model_dir)
        battery = _EngineBattery(
            check,
            messages if messages is not None else CHAT,
            list(prompt_ids),
            max_tokens,
            timeout,
        )
        engine = battery.build((lambda: factory) if factory is not None else descriptor.load, config)
        asyncio.run(battery.serve(engine))
    return check.report


# The values no engine can mean, as (what is wrong, the request's fields): check_request refuses
# each with UnsupportedRequest whatever the engine supports.
_INVALID: tuple[tuple[str, dict[str, Any]], ...] = (
    ("neither messages nor prompt", {"messages": None}),
    ("both messages and prompt", {"prompt": "Hello"}),
    ("max_tokens=-1", {"max_tokens": -1}),
    ("n=0", {"n": 0}),
    ("temperature=-1.0", {"temperature": -1.0}),
    ("temperature=nan", {"temperature": math.nan}),
    ("temperature=inf", {"temperature": math.inf}),
    ("repetition_penalty=1e-39 (infinite logits)", {"repetition_penalty": 1e-39}),
    ("repetition_penalty=inf", {"repetition_penalty": math.inf}),
    ("seed=2**64 (beyond 64 bits)", {"seed": 1 << 64}),
    ("top_p=1.5", {"top_p": 1.5}),
    ("top_p=0.0", {"top_p": 0.0}),
    ("top_k=-2", {"top_k": -2}),
    ("repetition_penalty=0.0", {"repetition_penalty": 0.0}),
    ("top_logprobs=-1", {"top_logprobs": -1}),
    ("an adapter it does not serve", {"adapter": "no-such-adapter-0d1e"}),
)


class _EngineBattery:
    """The clauses, in the order a server meets them: build, check, answer, stream, close."""

    def __init__(
        self,
        check: Checker,
        messages: list[dict[str, Any]],
        prompt_ids: list[int],
        max_tokens: int,
        timeout: float,
    ) -> None:
        self.check, self.messages, self.prompt_ids = check, messages, prompt_ids
        self.max_tokens, self.timeout = max_tokens, timeout

    # -- helpers -------------------------------------------------------------------------------------
    def greedy(self, **fields: Any) -> Any:
        """A greedy chat request (temperature 0) of `max_tokens`, with `fields` replaced."""
        from swift_core.engines.protocol import GenerationRequest

        values: dict[str, Any] = {
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
        }
        values.update(fields)
        return GenerationRequest(**values)

    def completion(self, **fields: Any) -> Any:
        return self.greedy(messages=None, **fields)

    @staticmethod
    def show(request: Any) -> str:
        from swift_core.engines.protocol import GenerationRequest

        default = GenerationRequest()
        changed = [
            f"{f.name}={getattr(request, f.name)!r}"
            for f in dataclasses.fields(request)
            if f.name not in ("messages", "prompt") and getattr(request, f.name) != getattr(default, f.name)
        ]
        kind = (
            "chat"
            if request.messages is not None
            else "completion"
            if request.prompt is not None
            else "no prompt"
        )
        return f"{kind} request ({', '.join(changed)})"

    async def within(self, awaitable: Any, what: str) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError:
            self.check.fail(f"{what} did not finish within {self.timeout} s")

    async def answer(self, engine: Any, request: Any) -> Any:
        """`generate(request)`, checked to be a `GenerationResponse`."""
        from swift_core.engines.protocol import GenerationResponse

        response = await self.within(engine.generate(request), f"generate ({self.show(request)})")
        self.check.require(
            isinstance(response, GenerationResponse),
            f"generate returned {type(response).__name__}, not a GenerationResponse",
        )
        return response

    async def chunks(self, engine: Any, request: Any) -> list[Any]:
        """Every item of `stream(request)`, checked to be `StreamChunk`s."""
        from swift_core.engines.protocol import StreamChunk

        async def every() -> list[Any]:
            return [chunk async for chunk in engine.stream(request)]

        items = await self.within(every(), f"stream ({self.show(request)})")
        odd = [type(c).__name__ for c in items if not isinstance(c, StreamChunk)]
        self.check.require(not odd, f"stream yielded {odd[0] if odd else ''}, not StreamChunk")
        return items

    def refused(self, error: BaseException | None, what: str) -> None:
        """`error` (what `what` raised) is an UnsupportedRequest."""
        from swift_core.engines.protocol import UnsupportedRequest
        from swift_core.errors import SwiftError

        if error is None:
            self.check.fail(f"{what}: accepted it (it must raise UnsupportedRequest)")
        elif not isinstance(error, UnsupportedRequest):
            hint = (
                "a SwiftError that is not an UnsupportedRequest, which the server answers 503 instead of 400"
                if isinstance(error, SwiftError)
                else "not UnsupportedRequest"
            )
            self.check.fail(f"{what}: raised {type(error).__name__} ({error}), {hint}")

    @staticmethod
    def check_error(engine: Any, request: Any) -> BaseException | None:
        try:
            engine.check_request(request)
        except Exception as exc:
            return exc
        return None

    async def first_error(self, engine: Any, request: Any, *, stream: bool) -> BaseException | None:
        """What `generate` (or the first step of `stream`) raised for `request`, if anything."""
        try:
            if stream:

                async def first() -> None:
                    items = engine.stream(request)
                    try:
                        async for _ in items:
                            return
                    finally:
                        aclose = getattr(items, "aclose", None)
                        if aclose is not None:
                            await aclose()

                await self.within(first(), f"stream ({self.show(request)})")
            else:
                await self.within(engine.generate(request), f"generate ({self.show(request)})")
        except Exception as exc:
            return exc
        return None

    # -- building ------------------------------------------------------------------------------------
    def build(self, load: Callable[[], Callable[[Any], Any]], config: Any) -> Any:
        """The engine `load()(config)` builds: `load` gives the factory (the descriptor's `load`
        imports it, and says what to install where the engine's library is missing)."""
        from swift_core.engines.protocol import InferenceEngine

        check = self.check
        with check.clause("the factory builds an InferenceEngine from an EngineConfig"):
            engine = load()(config)
            check.require(
                isinstance(engine, InferenceEngine),
                f"got {type(engine).__name__}, not a swift_core.engines.protocol.InferenceEngine",
            )
        return engine

    def describes(self, engine: Any) -> None:
        from swift_core.engines.protocol import EngineCapabilities

        check = self.check
        with check.clause("capabilities is an EngineCapabilities and the engine describes itself"):
            caps = engine.capabilities
            check.require(
                isinstance(caps, EngineCapabilities),
                f"capabilities is a {type(caps).__name__}, not an EngineCapabilities",
            )
            for f in dataclasses.fields(caps):
                value = getattr(caps, f.name)
                if f.name == "max_top_logprobs":
                    check.require(
                        isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                        f"max_top_logprobs must be a count, got {value!r}",
                    )
                elif f.name == "constraints":  # the OutputConstraint kinds it enforces
                    from swift_core.engines.constraints import KINDS

                    check.require(
                        isinstance(value, frozenset) and value <= set(KINDS),
                        f"capabilities.constraints must be a frozenset of {KINDS}, got {value!r}",
                    )
                else:
                    check.require(
                        isinstance(value, bool), f"capabilities.{f.name} must be a bool, got {value!r}"
                    )
            check.require(
                isinstance(engine.model_name, str), f"model_name is {engine.model_name!r}, not a str"
            )
            limit = engine.max_model_len
            check.require(
                isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0,
                f"max_model_len must be a count of tokens (0: unknown), got {limit!r}",
            )
            names = engine.adapter_names()
            check.require(
                isinstance(names, list) and all(isinstance(n, str) for n in names),
                f"adapter_names() must be a list of names, got {names!r}",
            )
            check.require(
                caps.lora or not names,
                f"adapter_names() is {names}, but capabilities.lora is False (no request may choose one)",
            )

    # -- on the event loop ---------------------------------------------------------------------------
    async def serve(self, engine: Any) -> None:
        """Every clause after the factory, then `close()`; the engine is closed on failure too."""
        try:
            self.describes(engine)
            self.accepts(engine)
            unsupported = self.refuses(engine)
            await self.requests_are_checked(engine, unsupported)
            response = await self.greedy_answers(engine)
            await self.streams(engine, response)
            await self.seeded(engine)
            await self.choices(engine)
            await self.logprobs(engine, response)
            await self.context(engine)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(engine.close(), self.timeout)
            raise
        with self.check.clause("close releases the engine"):
            await self.within(engine.close(), "close()")

    def accepts(self, engine: Any) -> None:
        check, caps = self.check, engine.capabilities
        with check.clause("check_request accepts plain requests"):
            for request in (
                self.greedy(),
                self.greedy(temperature=0.7, top_p=0.9),
                self.completion(prompt="The capital of France is"),
                self.completion(prompt=list(self.prompt_ids)),
            ):
                error = self.check_error(engine, request)
                check.require(
                    error is None, f"refused a {self.show(request)}: {type(error).__name__}: {error}"
                )
        declared: list[tuple[str, Any]] = []
        if caps.multiple_choices:
            declared.append(("multiple_choices", self.greedy(n=2)))
        if caps.logprobs:
            declared.append(("logprobs", self.greedy(logprobs=True)))
            if caps.max_top_logprobs:
                declared.append(
                    ("max_top_logprobs", self.greedy(logprobs=True, top_logprobs=caps.max_top_logprobs))
                )
            if caps.prompt_logprobs:
                declared.append(
                    ("prompt_logprobs", self.completion(prompt="The capital", echo=True, logprobs=True))
                )
        if caps.seed:
            declared.append(("seed", self.greedy(temperature=0.7, seed=1)))
        if caps.repetition_penalty:
            declared.append(("repetition_penalty", self.greedy(repetition_penalty=1.1)))
        if caps.top_k:
            declared.append(("top_k", self.greedy(temperature=0.7, top_k=5)))
        declared += [("lora", self.greedy(adapter=name)) for name in engine.adapter_names()]
        name = "check_request accepts what the capabilities declare"
        if not declared:
            check.skip(name, "the capabilities declare no optional feature")
            return
        with check.clause(name):
            for flag, request in declared:
                error = self.check_error(engine, request)
                check.require(
                    error is None,
                    f"refused a {self.show(request)}, which capabilities.{flag} declares: "
                    f"{type(error).__name__}: {error}",
                )

    def refuses(self, engine: Any) -> list[Any]:
        """The invalid values, then what the capabilities leave out; returns the latter."""
        check, caps = self.check, engine.capabilities
        with check.clause("check_request refuses invalid values with UnsupportedRequest"):
            for label, fields in _INVALID:
                request = self.greedy(**fields)
                self.refused(self.check_error(engine, request), f"check_request for {label}")
        unsupported: list[Any] = []
        if not caps.multiple_choices:
            unsupported.append(self.greedy(n=2))
        if not caps.logprobs:
            unsupported += [self.greedy(logprobs=True), self.greedy(top_logprobs=1)]
        else:
            unsupported.append(self.greedy(logprobs=True, top_logprobs=caps.max_top_logprobs + 1))
            if not caps.prompt_logprobs:
                unsupported.append(self.completion(prompt="The capital", echo=True, logprobs=True))
        if not caps.seed:
            unsupported.append(self.greedy(temperature=0.7, seed=1))
        if not caps.repetition_penalty:
            unsupported.append(self.greedy(repetition_penalty=1.1))
        if not caps.top_k:
            unsupported.append(self.greedy(temperature=0.7, top_k=5))
        # (capabilities.lora: an adapter the engine does not serve is refused among the invalid values)
        with check.clause("check_request refuses what the capabilities leave out with UnsupportedRequest"):
            for request in unsupported:
                self.refused(self.check_error(engine, request), f"check_request for a {self.show(request)}")
        return unsupported

    async def requests_are_checked(self, engine: Any, unsupported: list[Any]) -> None:
        with self.check.clause("generate and stream refuse what check_request refuses"):
            for request in (self.greedy(temperature=-1.0), *unsupported[:1]):
                for stream in (False, True):
                    error = await self.first_error(engine, request, stream=stream)
                    where = "stream" if stream else "generate"
                    self.refused(error, f"{where} for a {self.show(request)}")

    async def greedy_answers(self, engine: Any) -> Any:
        from swift_core.engines.protocol import Choice

        check = self.check
        request = self.greedy()
        with check.clause("greedy generate gives the same answer twice"):
            first = await self.answer(engine, request)
            second = await self.answer(engine, request)
            for response in (first, second):
                check.require(
                    len(response.choices) == 1
                    and isinstance(response.choices[0], Choice)
                    and response.choices[0].index == 0,
                    f"a request with n=1 got choices {response.choices!r} (one Choice, index 0)",
                )
            a, b = first.choices[0], second.choices[0]
            check.require(
                (a.text, a.token_ids) == (b.text, b.token_ids),
                f"temperature 0 answered {a.text!r} {a.token_ids}, then {b.text!r} {b.token_ids}",
            )
        with check.clause("generate honours max_tokens"):
            for response, limit in (
                (first, self.max_tokens),
                (await self.answer(engine, self.greedy(max_tokens=1)), 1),
            ):
                choice = response.choices[0] if len(response.choices) == 1 else None
                check.require(choice is not None, f"a request with n=1 got {len(response.choices)} choices")
                check.require(
                    response.completion_tokens <= limit and len(choice.token_ids) <= limit,
                    f"max_tokens={limit}, but the answer has {response.completion_tokens} completion tokens "
                    f"({len(choice.token_ids)} token ids)",
                )
                check.require(
                    choice.finish_reason in ("stop", "length"),
                    f"finish_reason is {choice.finish_reason!r} (expected 'stop' or 'length')",
                )
        with check.clause("generate reports usage"):
            choice = first.choices[0]
            for field in ("prompt_tokens", "completion_tokens"):
                value = getattr(first, field)
                check.require(
                    isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                    f"{field} is {value!r}, not a count",
                )
            check.require(first.prompt_tokens > 0, "prompt_tokens is 0 for a chat prompt")
            check.require(
                first.completion_tokens >= len(choice.token_ids)
                and (first.completion_tokens or not choice.text),
                f"completion_tokens is {first.completion_tokens} for an answer of {len(choice.token_ids)} "
                f"token ids ({choice.text!r})",
            )
            check.require(
                second.prompt_tokens == first.prompt_tokens,
                f"the same prompt counted {first.prompt_tokens}, then {second.prompt_tokens} tokens",
            )
            ids = await self.answer(engine, self.completion(prompt=list(self.prompt_ids)))
            check.require(
                ids.prompt_tokens == len(self.prompt_ids),
                f"a prompt of {len(self.prompt_ids)} token ids counted {ids.prompt_tokens} prompt tokens",
            )
        return first

    async def streams(self, engine: Any, response: Any) -> None:
        check = self.check
        with check.clause("stream adds up to generate's answer and ends with its finish reason and usage"):
            request = self.greedy()
            chunks = await self.chunks(engine, request)
            choice = response.choices[0]
            check.require(chunks, "the stream yielded nothing")
            indexes = sorted({c.index for c in chunks})
            check.require(indexes == [0], f"a request with n=1 streamed chunks of choices {indexes}")
            text = "".join(c.text for c in chunks)
            check.require(text == choice.text, f"the stream's text is {text!r}, generate's {choice.text!r}")
            early = [c.finish_reason for c in chunks[:-1] if c.finish_reason is not None]
            check.require(
                not early,
                f"a chunk before the last has finish_reason {early[:1]}: the stream went on after it",
            )
            last = chunks[-1]
            check.require(
                last.finish_reason == choice.finish_reason,
                f"the last chunk's finish_reason is {last.finish_reason!r}, generate's {choice.finish_reason!r}",
            )
            streamed = (last.prompt_tokens, max(c.completion_tokens for c in chunks))
            check.require(
                streamed == (response.prompt_tokens, response.completion_tokens),
                f"the stream reports usage (prompt, completion) {streamed}, generate "
                f"{(response.prompt_tokens, response.completion_tokens)}",
            )

    async def seeded(self, engine: Any) -> None:
        check = self.check
        name = "a seeded sampled request gives the same answer twice, and streams it"
        if not engine.capabilities.seed:
            check.skip(name, "capabilities.seed is False")
            return
        with check.clause(name):
            request = self.greedy(temperature=1.0, seed=1234)
            first = (await self.answer(engine, request)).choices[0]
            second = (await self.answer(engine, request)).choices[0]
            check.require(
                (first.text, first.token_ids) == (second.text, second.token_ids),
                f"seed=1234 answered {first.text!r} {first.token_ids}, then {second.text!r} {second.token_ids}",
            )
            streamed = "".join(c.text for c in await self.chunks(engine, request))
            check.require(
                streamed == first.text, f"seed=1234 streamed {streamed!r}, generate gave {first.text!r}"
            )

    async def choices(self, engine: Any) -> None:
        check = self.check
        name = "n=2 gives two choices, indexed 0 and 1, in generate and in stream"
        if not engine.capabilities.multiple_choices:
            check.skip(name, "capabilities.multiple_choices is False")
            return
        with check.clause(name):
            request = self.greedy(n=2)
            response = await self.answer(engine, request)
            indexes = sorted(c.index for c in response.choices)
            check.require(indexes == [0, 1], f"n=2 gave choices indexed {indexes}")
            check.require(
                response.completion_tokens <= 2 * self.max_tokens,
                f"two choices of max_tokens={self.max_tokens} count {response.completion_tokens} completion tokens",
            )
            chunks = await self.chunks(engine, request)
            texts = {c.index: c.text for c in response.choices}
            for index in (0, 1):
                mine = [c for c in chunks if c.index == index]
                streamed = "".join(c.text for c in mine)
                check.require(
                    streamed == texts[index],
                    f"choice {index} streamed {streamed!r}, generate gave {texts[index]!r}",
                )
                finished = [c for c in mine if c.finish_reason is not None]
                check.require(
                    len(finished) == 1 and finished[0] is mine[-1],
                    f"choice {index} streamed {len(finished)} chunks with a finish reason (one, its last)",
                )

    async def logprobs(self, engine: Any, response: Any) -> None:
        from swift_core.engines.protocol import TokenLogprob

        check, caps = self.check, engine.capabilities
        name = "logprobs: one per answer token, with the alternatives asked for, in generate and in stream"
        if not caps.logprobs:
            check.skip(name, "capabilities.logprobs is False")
            return
        with check.clause(name):
            top = min(2, caps.max_top_logprobs)
            request = self.greedy(logprobs=True, top_logprobs=top)
            choice = (await self.answer(engine, request)).choices[0]
            plain = response.choices[0]
            check.require(
                choice.text == plain.text,
                f"asking for logprobs changed the greedy answer: {choice.text!r}, without {plain.text!r}",
            )
            entries = choice.logprobs
            check.require(isinstance(entries, list), f"logprobs=True, but choice.logprobs is {entries!r}")
            odd = [type(e).__name__ for e in entries if not isinstance(e, TokenLogprob)]
            check.require(not odd, f"choice.logprobs holds {odd[:1]}, not TokenLogprob")
            if choice.token_ids:
                got = [e.token_id for e in entries]
                check.require(
                    got == choice.token_ids,
                    f"logprobs are for tokens {got}, the answer's token ids are {choice.token_ids}",
                )
            else:
                check.require(entries or not choice.text, f"no logprobs for the answer {choice.text!r}")
            for e in entries:
                check.require(
                    isinstance(e.logprob, float) and math.isfinite(e.logprob) and e.logprob <= 1e-4,
                    f"token {e.token!r} has logprob {e.logprob!r} (a finite log-probability <= 0)",
                )
                check.require(
                    len(e.top) == top,
                    f"top_logprobs={top}, but token {e.token!r} has {len(e.top)} alternatives",
                )
            chunks = await self.chunks(engine, request)
            streamed = [e.token_id for c in chunks for e in (c.logprobs or [])]
            check.require(
                streamed == [e.token_id for e in entries],
                f"the stream's logprobs are for tokens {streamed}, generate's for {[e.token_id for e in entries]}",
            )

    async def context(self, engine: Any) -> None:
        from swift_core.engines.protocol import PromptTooLong

        check = self.check
        name = "a prompt that leaves no room for a new token is refused with PromptTooLong"
        limit = engine.max_model_len
        if not limit:
            check.skip(name, "max_model_len is 0 (the engine does not know its context)")
            return
        with check.clause(name):
            ids = [self.prompt_ids[i % len(self.prompt_ids)] for i in range(limit)]
            request = self.completion(prompt=ids, max_tokens=1)
            for stream in (False, True):
                error = await self.first_error(engine, request, stream=stream)
                where = "stream" if stream else "generate"
                check.require(
                    isinstance(error, PromptTooLong),
                    f"{where} for a prompt of {limit} token ids (max_model_len {limit}): "
                    + ("answered it" if error is None else f"raised {type(error).__name__} ({error})")
                    + ", not PromptTooLong",
                )
