"""What engines built on an incremental library share: `IncrementalEngine`.

LMDeploy and SGLang both run one request per choice on their own event loop and yield each
choice's answer as increments (new text, new token ids, their logprobs, a finish reason on the
last one). Everything around those calls is the same for both: reading the adapters and the chat
template before the library starts, checking a request and turning it into a `Plan`, running the n
choices concurrently on the library's loop (cancelling the others when one fails or the caller
leaves), and assembling a `GenerationResponse` or `StreamChunk`s from the increments. It lives here
because engine plugins cannot import each other; a plugin keeps only what is its library's: how
the library is started and called, its options, stop handling, logprob conversion and aborts.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
from abc import abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from swift_core.engines.adapter_folders import DEFAULT_ADAPTER, model_context, read_adapters, split_checkpoint
from swift_core.engines.loop_bridge import Emit, LoopBridge
from swift_core.engines.prompt_ids import new_tokens_allowed, request_prompt_ids
from swift_core.engines.protocol import (
    Choice,
    EngineCapabilities,
    EngineConfig,
    GenerationRequest,
    GenerationResponse,
    InferenceEngine,
    StreamChunk,
    TokenLogprob,
)
from swift_core.engines.served_names import served_names
from swift_core.errors import SwiftError

MAX_TOP_LOGPROBS = 20  # OpenAI's limit, which Swift's server also applies
TOKEN_TEXT_CACHE = 200_000  # token texts kept for logprobs before the cache starts over


@dataclass
class Piece:
    """One increment of one choice, made on the library's loop and read on the caller's."""

    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    completion_tokens: int  # of the choice so far
    data: Any = None  # what the library gave with it (its logprobs, ...), for the engine's own use


@dataclass
class Plan:
    """A checked request, ready for the library."""

    request: GenerationRequest
    ids: list[int]
    max_new_tokens: int
    options: list[Any] = field(default_factory=list)  # the library's options, one per choice

    @property
    def wants_logprobs(self) -> bool:
        return bool(self.request.logprobs or self.request.top_logprobs > 0)

    @property
    def wants_prompt_logprobs(self) -> bool:
        return bool(self.request.echo and self.request.logprobs)


async def run_choices(run: Any, count: int) -> None:
    """Await `run(i)` for i in range(count) concurrently; when one fails (or this is cancelled),
    cancel the others and wait for their clean-up (the library's aborts) before raising."""
    tasks = [asyncio.ensure_future(run(i)) for i in range(count)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class IncrementalEngine(InferenceEngine):
    """An engine whose library answers each choice as increments, on the library's own loop.

    A subclass starts its library in `__init__` (calling `_read_config` first and `_load_template`
    once the model is known, and setting `_bridge`), and implements `_choice_options`, `_run_choice`,
    `_piece_logprobs` and `_stop_library`.
    """

    engine_name = "engine"  # in messages
    config: EngineConfig
    _bridge: LoopBridge

    # --- start and stop -----------------------------------------------------------------------

    def _read_config(self, config: EngineConfig, manager: Any) -> tuple[Any, list[Any]]:
        """Before the library starts: the plugin manager, and every adapter the library must load
        (a Swift checkpoint given as the model first: it is on for requests that name none)."""
        if manager is None:
            from swift_core.plugins import get_plugin_manager

            manager = get_plugin_manager()
        self._given_model = str(config.model)  # what --model said: the served name comes from it
        config, default = split_checkpoint(config, self.engine_name)
        self.config = config
        self._closed = False
        if DEFAULT_ADAPTER in config.adapters:
            raise SwiftError(f"adapter name {DEFAULT_ADAPTER!r} is reserved; choose another")
        adapters = read_adapters(config.adapters, self.engine_name)
        self._adapters = [a.name for a in adapters]
        self._default_adapter = default.name if default else None  # requests that name no adapter
        return manager, [default, *adapters] if default else adapters

    def _load_template(self, template_name: str, resolved: Any, manager: Any) -> None:
        """The tokenizer and Swift's chat template (prompts are rendered here, not by the library),
        the template's stop token ids, and the served model name."""
        from swift_core.models.loading import load_tokenizer, template_for

        self.tokenizer = load_tokenizer(resolved.model)
        self.template = template_for(template_name, self.tokenizer, manager)
        vocab = self.tokenizer.get_vocab()
        self._stop_ids = [vocab[t] for t in self.template.stop if t in vocab]
        self._token_texts: dict[int, str] = {}
        # One naming rule for every engine (swift_core.engines.served_names).
        given = getattr(self, "_given_model", str(self.config.model))
        hub_id = resolved.hub_id if given == str(self.config.model) else None  # not a checkpoint's base
        self.model_name, *aliases = served_names(given, self.config.served_model_name, hub_id)
        self.model_aliases = tuple(aliases)

    def _context_length(self, reported: Any, resolved: Any) -> int:
        """The model's context: what the library reports, else the configured one, else the model's."""
        return int(
            reported
            or self.config.max_model_len
            or (model_context(resolved.model) if resolved.is_local else None)
            or 2048
        )

    @staticmethod
    def _capabilities(*, lora: bool, prompt_logprobs: bool, seed: bool) -> EngineCapabilities:
        """What such an engine supports: n > 1 (as n library requests), logprobs of generated
        tokens, streaming and every sampling option; the rest depends on the library."""
        return EngineCapabilities(
            lora=lora,
            logprobs=True,
            prompt_logprobs=prompt_logprobs,
            streaming=True,
            multiple_choices=True,
            seed=seed,
            repetition_penalty=True,
            top_k=True,
            max_top_logprobs=MAX_TOP_LOGPROBS,
        )

    @abstractmethod
    def _stop_library(self) -> None:
        """Stop the library (its engine, processes, threads); errors are the subclass's to swallow."""

    def shutdown(self) -> None:
        """Abort what is in flight, stop the library, then the loop thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.shutdown)
        self._bridge.cancel_all()
        self._stop_library()
        self._bridge.close()

    async def close(self) -> None:
        await asyncio.to_thread(self.shutdown)

    # --- requests -----------------------------------------------------------------------------

    def adapter_names(self) -> list[str]:
        return list(self._adapters)

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt as token ids: Swift's template for chat, the tokenizer for text, ids as given
        (a prompt far over the context is refused before it is tokenized)."""
        return request_prompt_ids(
            self.template, self.tokenizer, request, max_model_len=self.max_model_len or None
        )

    @abstractmethod
    def _choice_options(self, plan: Plan, index: int) -> Any:
        """The library's options for choice `index` of `plan` (sampling values, limits, seed)."""

    async def _plan(self, request: GenerationRequest) -> Plan:
        if self._closed:
            raise SwiftError(f"the {self.engine_name} engine is shut down")
        self.check_request(request)
        ids = await asyncio.to_thread(self.prompt_ids, request)  # off the caller's event loop
        plan = Plan(request, ids, new_tokens_allowed(len(ids), request.max_tokens, self.max_model_len))
        plan.options = [self._choice_options(plan, i) for i in range(request.n)]
        return plan

    @abstractmethod
    async def _run_choice(self, plan: Plan, index: int, stream: bool, emit: Emit) -> None:
        """On the library's loop: choice `index` of `plan`, each increment handed to `emit` as a
        `Piece` (the last with its finish reason); cancellation must abort it inside the library."""

    def _pieces(self, plan: Plan, stream: bool, choices: int) -> AsyncIterator[Piece]:
        """Increments of the first `choices` choices of `plan`, as they come; cancel-safe."""

        async def produce(emit: Emit) -> None:
            await run_choices(lambda i: self._run_choice(plan, i, stream, emit), choices)

        return self._bridge.stream(produce)

    def _token_text(self, token_id: int) -> str:
        """One token's text (for logprobs), cached."""
        text = self._token_texts.get(token_id)
        if text is None:
            if len(self._token_texts) > TOKEN_TEXT_CACHE:
                self._token_texts.clear()
            text = self._token_texts[token_id] = self.tokenizer.decode([token_id], skip_special_tokens=False)
        return text

    @abstractmethod
    def _piece_logprobs(self, piece: Piece, plan: Plan) -> list[TokenLogprob]:
        """The logprobs of `piece`'s tokens, from what the library gave with it."""

    def _logprobs(self, piece: Piece, plan: Plan) -> list[TokenLogprob] | None:
        return self._piece_logprobs(piece, plan) if plan.wants_logprobs else None

    def _calls_without_new_tokens(self, plan: Plan) -> int:
        """How many choices to run when no token may be generated (a library that returns prompt
        logprobs runs one for them)."""
        return 0

    def _finish_response(self, response: GenerationResponse, plan: Plan, last: list[Piece | None]) -> None:
        """Add what the library gave beyond the choices (e.g. prompt logprobs); `last` holds each
        choice's last piece."""

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        plan = await self._plan(request)
        n = request.n
        texts: list[list[str]] = [[] for _ in range(n)]
        ids: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(n)]
        reasons = ["length"] * n
        counts = [0] * n
        last: list[Piece | None] = [None] * n
        calls = n if plan.max_new_tokens > 0 else self._calls_without_new_tokens(plan)
        if calls:
            async with contextlib.aclosing(self._pieces(plan, stream=False, choices=calls)) as pieces:
                async for piece in pieces:
                    last[piece.index] = piece
                    if plan.max_new_tokens == 0:
                        continue
                    texts[piece.index].append(piece.text)
                    ids[piece.index] += piece.token_ids
                    logprobs[piece.index] += self._logprobs(piece, plan) or []
                    counts[piece.index] = piece.completion_tokens
                    if piece.finish_reason is not None:
                        reasons[piece.index] = piece.finish_reason
        choices = [
            Choice(i, "".join(texts[i]), reasons[i], ids[i], logprobs[i] if plan.wants_logprobs else None)
            for i in range(n)
        ]
        response = GenerationResponse(
            choices=choices, prompt_tokens=len(plan.ids), completion_tokens=sum(counts)
        )
        if request.echo:
            prompt = request.prompt
            response.prompt_text = prompt if isinstance(prompt, str) else self.tokenizer.decode(plan.ids)
        self._finish_response(response, plan, last)
        return response

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        plan = await self._plan(request)
        prompt_tokens = len(plan.ids)
        if plan.max_new_tokens == 0:
            for i in range(request.n):
                yield StreamChunk(i, "", "length", [] if plan.wants_logprobs else None, prompt_tokens, 0)
            return
        async with contextlib.aclosing(self._pieces(plan, stream=True, choices=request.n)) as pieces:
            async for piece in pieces:
                yield StreamChunk(
                    piece.index,
                    piece.text,
                    piece.finish_reason,
                    self._logprobs(piece, plan),
                    prompt_tokens,
                    piece.completion_tokens,
                )
