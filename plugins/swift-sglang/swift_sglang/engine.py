"""SGLang's offline engine behind Swift's `InferenceEngine` protocol.

The adapter follows SGLang's Python API as python/sglang/srt/entrypoints/engine.py and
python/sglang/srt/server_args.py define it (v0.4.6 onwards):

- `sglang.Engine(**kwargs)`: the keywords are `ServerArgs` fields (`model_path`,
  `tokenizer_path`, `dtype`, `context_length`, `random_seed`, `max_running_requests`,
  `enable_lora`, `lora_paths`, `max_loras_per_batch`, ...); `Engine.shutdown()` stops its
  scheduler and detokenizer processes;
- `await Engine.async_generate(input_ids=..., sampling_params={...}, stream=..., rid=...,
  return_logprob=..., top_logprobs_num=..., logprob_start_len=..., lora_path=name)`: one output
  dict, or (stream=True) an async generator of them (see swift_sglang.text for their shape);
- `Engine.tokenizer_manager.abort_request(rid)`: stops a request inside the scheduler. Cancelling
  the task that reads a request does not (SGLang's HTTP server aborts explicitly too), so the
  adapter gives every request its own `rid` and aborts it when the caller goes away.

Prompts are rendered by Swift's chat template (`encode_prompt`, the code training used) and
reach SGLang as `input_ids`, so SGLang's chat templates never touch them: a model is served
exactly the way it was trained. LoRA adapters are loaded at start (`lora_paths`) and chosen per
request by name (`lora_path`); a Swift adapter checkpoint given as the model (`swift infer
--adapters CHECKPOINT`) serves its base model with that adapter on for requests that name none. `n > 1` is served as n requests (each with its own rid to abort).
Per-request seeds need SGLang's deterministic inference (`enable_deterministic_inference`), which
is when its `sampling_seed` is honoured; without it such requests are refused.

All SGLang calls run on one loop thread (swift_core.infer.loop_bridge): the TokenizerManager binds to the
loop of its first request.

Tests: tests/test_sglang_engine.py runs this module against a fake of the sglang API (SGLang needs
a GPU); bench/gpu/sglang_smoke.py checks it against the real library on a GPU.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sglang
from sglang.srt.server_args import ServerArgs

from swift_core.errors import SwiftError
from swift_core.infer.adapter_folders import (
    DEFAULT_ADAPTER,
    choose_template,
    model_context,
    read_adapters,
    split_checkpoint,
)
from swift_core.infer.loop_bridge import Emit, LoopBridge
from swift_core.infer.prompt_ids import new_tokens_allowed, request_prompt_ids
from swift_core.infer.protocol import (
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
from swift_sglang.config import MAX_REPETITION_PENALTY, sampling_params, server_args_kwargs
from swift_sglang.text import ChunkReader, Increment, finish_kind, token_logprobs

SERVER_ARG_NAMES = [f.name for f in dataclasses.fields(ServerArgs)]
ENGINE_NAME = "SGLang"  # in messages
MAX_TOP_LOGPROBS = 20  # OpenAI's limit, which Swift's server also applies


@dataclass
class Piece:
    """One increment of one choice, made on the engine loop and read on the caller's."""

    index: int
    increment: Increment
    finish_reason: str | None


@dataclass
class Plan:
    """A checked request, ready for SGLang."""

    request: GenerationRequest
    ids: list[int]
    max_new_tokens: int
    params: list[dict[str, Any]] = field(default_factory=list)  # one per choice

    @property
    def wants_logprobs(self) -> bool:
        return bool(self.request.logprobs or self.request.top_logprobs > 0)

    @property
    def wants_prompt_logprobs(self) -> bool:
        return bool(self.request.echo and self.request.logprobs)


class SglangEngine(InferenceEngine):
    """One SGLang engine (plus LoRA adapters) answering Swift requests."""

    def __init__(self, config: EngineConfig, manager: Any = None):
        from swift_core.models.loading import load_tokenizer, template_for

        if manager is None:
            from swift_core.plugins import get_plugin_manager

            manager = get_plugin_manager()
        config, default = split_checkpoint(config, ENGINE_NAME)
        self.config = config
        self._closed = False
        if DEFAULT_ADAPTER in config.adapters:
            raise SwiftError(f"adapter name {DEFAULT_ADAPTER!r} is reserved; choose another")
        adapters = read_adapters(config.adapters, ENGINE_NAME)
        loaded = [default, *adapters] if default else adapters  # every adapter SGLang loads
        template_name, resolved = choose_template(config, loaded, manager)
        kwargs = server_args_kwargs(
            config, resolved.model, {a.name: a.path for a in loaded}, SERVER_ARG_NAMES
        )
        self.tokenizer = load_tokenizer(resolved.model)
        self.template = template_for(template_name, self.tokenizer, manager)
        vocab = self.tokenizer.get_vocab()
        self._stop_ids = [vocab[t] for t in self.template.stop if t in vocab]
        self._token_texts: dict[int, str] = {}
        self.model_name = config.served_model_name or (
            Path(resolved.model).name if resolved.is_local else resolved.model
        )
        self._bridge = LoopBridge(name="swift-sglang-loop")
        try:
            self._engine = sglang.Engine(**kwargs)
        except BaseException as exc:
            self._bridge.close()
            if isinstance(exc, (TypeError, ValueError)):
                raise SwiftError(f"invalid SGLang engine options: {exc}") from None
            if isinstance(exc, Exception):
                raise SwiftError(
                    f"SGLang could not start on {resolved.model}: {type(exc).__name__}: {exc}"
                ) from exc
            raise
        atexit.register(self.shutdown)
        server_args = getattr(self._engine, "server_args", None)
        self._incremental = bool(getattr(server_args, "incremental_streaming_output", False))
        deterministic = bool(getattr(server_args, "enable_deterministic_inference", False))
        self._adapters = [a.name for a in adapters]
        self._default_adapter = default.name if default else None  # requests that name no adapter
        tokenizer_manager = getattr(self._engine, "tokenizer_manager", None)
        self.max_model_len = int(
            getattr(tokenizer_manager, "context_len", None)
            or config.max_model_len
            or (model_context(resolved.model) if resolved.is_local else None)
            or 2048
        )
        self.capabilities = EngineCapabilities(
            lora=bool(self._adapters),
            logprobs=True,
            prompt_logprobs=True,
            streaming=True,
            multiple_choices=True,  # as n requests
            seed=deterministic,  # sampling_seed is honoured by deterministic inference only
            repetition_penalty=True,
            top_k=True,
            max_top_logprobs=MAX_TOP_LOGPROBS,
        )

    # --- life cycle ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Abort what is in flight, stop SGLang's processes and the loop thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.shutdown)
        self._bridge.cancel_all()
        with contextlib.suppress(Exception):
            self._engine.shutdown()
        self._bridge.close()

    async def close(self) -> None:
        await asyncio.to_thread(self.shutdown)

    # --- requests -----------------------------------------------------------------------------

    def adapter_names(self) -> list[str]:
        return list(self._adapters)

    def check_request(self, request: GenerationRequest) -> None:
        super().check_request(request)  # the values every engine refuses
        if request.repetition_penalty > MAX_REPETITION_PENALTY:
            raise UnsupportedRequest(f"repetition_penalty must be in (0, {MAX_REPETITION_PENALTY}] on SGLang")

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt as token ids: Swift's template for chat, the tokenizer for text, ids as given."""
        return request_prompt_ids(self.template, self.tokenizer, request)

    def _plan(self, request: GenerationRequest) -> Plan:
        if self._closed:
            raise SwiftError("the SGLang engine is shut down")
        self.check_request(request)
        ids = self.prompt_ids(request)
        plan = Plan(request, ids, new_tokens_allowed(len(ids), request.max_tokens, self.max_model_len))
        plan.params = [
            sampling_params(
                request,
                max_new_tokens=plan.max_new_tokens,
                stop_token_ids=self._stop_ids,
                seed=None if request.seed is None else request.seed + i,
            )
            for i in range(request.n)
        ]
        return plan

    def _abort(self, rid: str) -> None:
        with contextlib.suppress(Exception):
            self._engine.tokenizer_manager.abort_request(rid=rid)

    async def _run_choice(self, plan: Plan, index: int, stream: bool, emit: Emit) -> None:
        """On the engine loop: one SGLang request for one choice, its increments handed to `emit`."""
        rid = f"swift-{uuid.uuid4().hex}"
        kwargs: dict[str, Any] = {
            "input_ids": list(plan.ids),
            "sampling_params": plan.params[index],
            "stream": stream,
            "rid": rid,
        }
        prompt_logprobs = plan.wants_prompt_logprobs and index == 0
        if plan.wants_logprobs or prompt_logprobs:
            kwargs["return_logprob"] = True
            kwargs["top_logprobs_num"] = plan.request.top_logprobs
            kwargs["logprob_start_len"] = 0 if prompt_logprobs else -1  # -1: generated tokens only
        adapter = plan.request.adapter or self._default_adapter
        if adapter is not None:
            kwargs["lora_path"] = adapter
        reader = ChunkReader(self._incremental, plan.request.stop)
        outputs: Any = None
        try:
            result = await self._engine.async_generate(**kwargs)
            if not stream:
                self._emit(reader.read(result), index, emit)
                return
            outputs = result
            done = False
            async for out in outputs:
                if not done:  # after the last output, let SGLang's generator end on its own
                    done = self._emit(reader.read(out), index, emit)
        except asyncio.CancelledError:
            self._abort(rid)
            raise
        except ValueError as exc:  # SGLang refuses the request itself (HTTP 400 in its server)
            raise UnsupportedRequest(str(exc)) from None
        finally:
            if outputs is not None:
                with contextlib.suppress(Exception):
                    await outputs.aclose()

    def _emit(self, increment: Increment, index: int, emit: Emit) -> bool:
        """Hand one increment on; True when it ends the choice."""
        kind = finish_kind(increment.finish)
        if kind == "abort":
            reason = increment.finish if isinstance(increment.finish, dict) else {}
            message = str(reason.get("message") or "the request was aborted")
            if reason.get("status_code") == 400:
                raise UnsupportedRequest(message)
            raise SwiftError(f"SGLang aborted the request: {message}")
        if kind is not None and kind not in ("stop", "length"):
            raise SwiftError(f"SGLang ended the request with {increment.finish!r}")
        if kind is None and not increment.text and not increment.token_ids:
            return False
        emit(Piece(index, increment, kind))
        return kind is not None

    def _pieces(self, plan: Plan, stream: bool, choices: int) -> AsyncIterator[Piece]:
        async def produce(emit: Emit) -> None:
            tasks = [asyncio.ensure_future(self._run_choice(plan, i, stream, emit)) for i in range(choices)]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

        return self._bridge.stream(produce)

    def _token_text(self, token_id: int) -> str:
        text = self._token_texts.get(token_id)
        if text is None:
            if len(self._token_texts) > 200_000:
                self._token_texts.clear()
            text = self._token_texts[token_id] = self.tokenizer.decode([token_id], skip_special_tokens=False)
        return text

    def _logprobs(self, increment: Increment, plan: Plan) -> list[TokenLogprob] | None:
        if not plan.wants_logprobs:
            return None
        return token_logprobs(
            increment.logprobs, increment.top_logprobs, plan.request.top_logprobs, self._token_text
        )

    def _prompt_logprobs(self, meta: dict[str, Any], plan: Plan) -> list[TokenLogprob]:
        entries = meta.get("input_token_logprobs") or []
        out = token_logprobs(
            entries, meta.get("input_top_logprobs"), plan.request.top_logprobs, self._token_text
        )
        if out:
            out[0].logprob, out[0].top = None, []  # nothing predicts the first token
        return out

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        plan = self._plan(request)
        n = request.n
        texts: list[list[str]] = [[] for _ in range(n)]
        ids: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(n)]
        reasons = ["length"] * n
        counts = [0] * n
        prompt_meta: dict[str, Any] = {}
        # Nothing to generate: SGLang is asked (max_new_tokens=0) only for prompt logprobs.
        calls = n if plan.max_new_tokens > 0 else (1 if plan.wants_prompt_logprobs else 0)
        if calls:
            async with contextlib.aclosing(self._pieces(plan, stream=False, choices=calls)) as pieces:
                async for piece in pieces:
                    inc = piece.increment
                    if piece.index == 0 and plan.wants_prompt_logprobs:
                        prompt_meta = inc.meta
                    if plan.max_new_tokens == 0:
                        continue
                    texts[piece.index].append(inc.text)
                    ids[piece.index] += inc.token_ids
                    logprobs[piece.index] += self._logprobs(inc, plan) or []
                    counts[piece.index] = inc.completion_tokens
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
            response.prompt_text = (
                request.prompt if isinstance(request.prompt, str) else self.tokenizer.decode(plan.ids)
            )
            if plan.wants_prompt_logprobs:
                response.prompt_logprobs = self._prompt_logprobs(prompt_meta, plan)
        return response

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        plan = self._plan(request)
        prompt_tokens = len(plan.ids)
        if plan.max_new_tokens == 0:
            for i in range(request.n):
                yield StreamChunk(i, "", "length", [] if plan.wants_logprobs else None, prompt_tokens, 0)
            return
        async with contextlib.aclosing(self._pieces(plan, stream=True, choices=request.n)) as pieces:
            async for piece in pieces:
                inc = piece.increment
                yield StreamChunk(
                    piece.index,
                    inc.text,
                    piece.finish_reason,
                    self._logprobs(inc, plan),
                    prompt_tokens,
                    inc.completion_tokens,
                )
