"""LMDeploy behind Swift's `InferenceEngine` protocol.

The adapter follows LMDeploy's Python API as these files define it (v0.7 to v0.10, and the
`Pipeline` wrapper that later versions return from `pipeline()`):

- `lmdeploy/api.py`: `pipeline(model_path, backend_config=TurbomindEngineConfig(...) |
  PytorchEngineConfig(...), chat_template_config=None, log_level=..., **kwargs)`;
- `lmdeploy/messages.py`: `GenerationConfig(n, max_new_tokens, do_sample, top_p, top_k,
  temperature, repetition_penalty, random_seed, stop_token_ids, skip_special_tokens, logprobs,
  ...)`, `TurbomindEngineConfig`, `PytorchEngineConfig(adapters={name: path}, ...)`;
- `lmdeploy/serve/async_engine.py` (later `serve/core/async_engine.py`): the async generator
  `AsyncEngine.generate(messages, session_id, gen_config, stream_response, sequence_start,
  sequence_end, do_preprocess, adapter_name, input_ids, ...)` yielding `GenOut(response,
  history_token_len, input_token_len, generate_token_len, finish_reason, token_ids, logprobs)`:
  text and token ids are increments, the last one carries `finish_reason` ("stop", "length",
  "abort" or "error"); `stop_session(session_id)` cancels a running session, and closing the
  generator cancels it too (its `safe_run` calls `async_cancel` / `Session.async_abort`).

Prompts are rendered by Swift's chat template (`encode_prompt`, the code training used) and
reach LMDeploy as `input_ids` with `do_preprocess=False`, so LMDeploy's own chat templates never
touch them: a model is served exactly the way it was trained. LoRA adapters exist only on the
PyTorch backend (`PytorchEngineConfig.adapters`, `adapter_name` per request); the TurboMind backend
refuses them. A Swift adapter checkpoint given as the model (`swift infer --adapters CHECKPOINT`)
serves its base model with that adapter on for requests that name none. `n > 1` is served as n sessions (LMDeploy generates one sequence per request and
falls back to n=1), each with its own seed.

All LMDeploy calls run on the loop LMDeploy's engine is bound to (`internal_thread.loop`, see
swift_core.infer.loop_bridge); a cancelled caller (a client gone, a stream closed) stops the session
inside LMDeploy (`stop_session`, then closing the generator).

Tests: tests/test_lmdeploy_engine.py runs this module against a fake of the lmdeploy API (LMDeploy
needs a CUDA GPU); bench/gpu/lmdeploy_smoke.py checks it against the real library on a GPU.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdeploy
from lmdeploy import GenerationConfig, PytorchEngineConfig, TurbomindEngineConfig

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
from swift_lmdeploy.config import build_backend_config, choose_backend, generation_config
from swift_lmdeploy.text import StopCutter, token_logprobs

ENGINE_NAME = "LMDeploy"  # in messages
MAX_TOP_LOGPROBS = 20  # OpenAI's limit, which Swift's server also applies
MAX_TEMPERATURE = 2.0  # GenerationConfig.__post_init__ asserts 0 <= temperature <= 2
_SESSION_BASE = 1 << 40  # our session ids, far from the ones the pipeline's own helpers count from 0


@dataclass
class Piece:
    """One increment of one choice, made on LMDeploy's loop and read on the caller's."""

    index: int
    text: str
    token_ids: list[int]
    logprobs: list[dict[int, float]] | None
    finish_reason: str | None
    completion_tokens: int


@dataclass
class Plan:
    """A checked request, ready for LMDeploy."""

    request: GenerationRequest
    ids: list[int]
    max_new_tokens: int
    gen_configs: list[Any] = field(default_factory=list)  # one per choice

    @property
    def wants_logprobs(self) -> bool:
        return bool(self.request.logprobs or self.request.top_logprobs > 0)


class LmdeployEngine(InferenceEngine):
    """One LMDeploy pipeline (TurboMind or PyTorch backend, plus LoRA adapters) answering requests."""

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
        loaded = [default, *adapters] if default else adapters  # every adapter LMDeploy loads
        backend = choose_backend(config, bool(loaded))
        template_name, resolved = choose_template(config, loaded, manager)
        backend_config = build_backend_config(
            config,
            backend,
            {a.name: a.path for a in loaded},
            TurbomindEngineConfig,
            PytorchEngineConfig,
        )
        self.tokenizer = load_tokenizer(resolved.model)
        self.template = template_for(template_name, self.tokenizer, manager)
        vocab = self.tokenizer.get_vocab()
        self._stop_ids = [vocab[t] for t in self.template.stop if t in vocab]
        self._token_texts: dict[int, str] = {}
        self.model_name = config.served_model_name or (
            Path(resolved.model).name if resolved.is_local else resolved.model
        )
        try:
            self._pipe = lmdeploy.pipeline(
                resolved.model,
                backend_config=backend_config,
                log_level=str(config.extra.get("log_level", "WARNING")),
            )
        except SwiftError:
            raise
        except Exception as exc:
            raise SwiftError(
                f"LMDeploy could not start on {resolved.model}: {type(exc).__name__}: {exc}"
            ) from exc
        # Later versions wrap the AsyncEngine in a Pipeline (lmdeploy/pipeline.py: .async_engine).
        self._engine = getattr(self._pipe, "async_engine", self._pipe)
        self.backend = str(getattr(self._engine, "backend", backend))
        if loaded and self.backend != "pytorch":
            self._close_pipe()
            raise SwiftError(f"LMDeploy started the {self.backend} backend, which serves no LoRA adapters")
        internal = getattr(self._pipe, "internal_thread", None) or getattr(
            self._engine, "internal_thread", None
        )
        self._bridge = LoopBridge(getattr(internal, "loop", None), name="swift-lmdeploy-loop")
        atexit.register(self.shutdown)
        self._adapters = [a.name for a in adapters]
        self._default_adapter = default.name if default else None  # requests that name no adapter
        self.max_model_len = int(
            getattr(self._engine, "session_len", None)
            or config.max_model_len
            or (model_context(resolved.model) if resolved.is_local else None)
            or 2048
        )
        self._session_ids = itertools.count(_SESSION_BASE)
        # Requests without a seed: reproducible per engine when EngineConfig.seed is set.
        self._seeds = random.Random(config.seed) if config.seed is not None else None
        self.capabilities = EngineCapabilities(
            lora=self.backend == "pytorch" and bool(self._adapters),
            logprobs=True,
            prompt_logprobs=False,  # LMDeploy returns logprobs of generated tokens only
            streaming=True,
            multiple_choices=True,  # as n sessions
            seed=True,
            repetition_penalty=True,
            top_k=True,
            max_top_logprobs=MAX_TOP_LOGPROBS,
        )

    # --- life cycle ---------------------------------------------------------------------------

    def _close_pipe(self) -> None:
        with contextlib.suppress(Exception):
            self._pipe.close()

    def shutdown(self) -> None:
        """Abort what is in flight, then close the pipeline (its engine and loop thread); idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.shutdown)
        self._bridge.cancel_all()
        self._close_pipe()
        self._bridge.close()

    async def close(self) -> None:
        await asyncio.to_thread(self.shutdown)

    # --- requests -----------------------------------------------------------------------------

    def adapter_names(self) -> list[str]:
        return list(self._adapters)

    def check_request(self, request: GenerationRequest) -> None:
        if request.adapter is not None and self.backend != "pytorch":
            raise UnsupportedRequest(
                f"adapter {request.adapter!r}: LMDeploy's {self.backend} backend serves no LoRA adapters "
                '(start the engine with --engine_kwargs \'{"backend": "pytorch"}\' and --adapters)'
            )
        super().check_request(request)  # the values every engine refuses
        if request.temperature > MAX_TEMPERATURE:
            raise UnsupportedRequest(f"temperature must be in [0, {MAX_TEMPERATURE}] on LMDeploy")

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt as token ids: Swift's template for chat, the tokenizer for text, ids as given."""
        return request_prompt_ids(self.template, self.tokenizer, request)

    def _seed(self, request: GenerationRequest, index: int) -> int | None:
        if request.seed is not None:
            return request.seed + index  # n choices of one seeded request differ, reproducibly
        if self._seeds is not None:
            return self._seeds.getrandbits(63)
        return None

    def _plan(self, request: GenerationRequest) -> Plan:
        if self._closed:
            raise SwiftError("the LMDeploy engine is shut down")
        self.check_request(request)
        ids = self.prompt_ids(request)
        plan = Plan(request, ids, new_tokens_allowed(len(ids), request.max_tokens, self.max_model_len))
        plan.gen_configs = [
            generation_config(
                GenerationConfig,
                request,
                max_new_tokens=plan.max_new_tokens,
                stop_token_ids=self._stop_ids,
                seed=self._seed(request, i),
            )
            for i in range(request.n)
        ]
        return plan

    async def _run_choice(self, plan: Plan, index: int, stream: bool, emit: Emit) -> None:
        """On LMDeploy's loop: one session for one choice, its increments handed to `emit`."""
        session_id = next(self._session_ids)
        cutter = StopCutter(plan.request.stop)
        count = 0
        finished = False
        generator = self._engine.generate(
            None,
            session_id,
            gen_config=plan.gen_configs[index],
            stream_response=stream,
            sequence_start=True,
            sequence_end=True,
            do_preprocess=False,
            adapter_name=plan.request.adapter or self._default_adapter,
            input_ids=list(plan.ids),
        )
        try:
            async for out in generator:
                if finished:
                    continue  # let LMDeploy run its end-of-session code after the last output
                reason = getattr(out, "finish_reason", None)
                if reason == "error":
                    raise SwiftError(f"LMDeploy failed on the request: {out.response}")
                if reason == "abort":
                    raise SwiftError("LMDeploy aborted the request (the engine is stopping)")
                new_ids = [int(t) for t in (out.token_ids or [])]
                count += len(new_ids)
                text = cutter.feed(out.response or "")
                if cutter.stopped:
                    emit(Piece(index, text, new_ids, out.logprobs, "stop", count))
                    break  # a stop string: end the session now (finally)
                if reason is not None:
                    finished = True
                    emit(Piece(index, text + cutter.flush(), new_ids, out.logprobs, reason, count))
                elif text or new_ids:
                    emit(Piece(index, text, new_ids, out.logprobs, None, count))
        except asyncio.CancelledError:
            await self._stop_session(session_id)
            raise
        finally:
            if cutter.stopped:
                await self._stop_session(session_id)
            await generator.aclose()
        if not finished and not cutter.stopped:
            raise SwiftError("LMDeploy ended the request without a finish reason")

    async def _stop_session(self, session_id: int) -> None:
        """Stop a running session inside LMDeploy (a no-op for a finished one)."""
        stop = getattr(self._engine, "stop_session", None)
        if stop is None:  # later versions abort through the generator's own clean-up only
            return
        with contextlib.suppress(Exception):
            result = stop(session_id)
            if asyncio.iscoroutine(result):
                await asyncio.shield(result)

    def _pieces(self, plan: Plan, stream: bool) -> AsyncIterator[Piece]:
        """Increments of every choice of `plan`, as they come; cancel-safe."""

        async def produce(emit: Emit) -> None:
            tasks = [
                asyncio.ensure_future(self._run_choice(plan, i, stream, emit)) for i in range(plan.request.n)
            ]
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

    def _logprobs(self, piece: Piece, plan: Plan) -> list[TokenLogprob] | None:
        if not plan.wants_logprobs:
            return None
        return token_logprobs(piece.token_ids, piece.logprobs, plan.request.top_logprobs, self._token_text)

    def _prompt_text(self, plan: Plan) -> str | None:
        if not plan.request.echo:
            return None
        prompt = plan.request.prompt
        return prompt if isinstance(prompt, str) else self.tokenizer.decode(plan.ids)

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        plan = self._plan(request)
        n = request.n
        texts: list[list[str]] = [[] for _ in range(n)]
        ids: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(n)]
        reasons: list[str] = ["length"] * n
        if plan.max_new_tokens > 0:
            async with contextlib.aclosing(self._pieces(plan, stream=False)) as pieces:
                async for piece in pieces:
                    texts[piece.index].append(piece.text)
                    ids[piece.index] += piece.token_ids
                    logprobs[piece.index] += self._logprobs(piece, plan) or []
                    if piece.finish_reason is not None:
                        reasons[piece.index] = piece.finish_reason
        choices = [
            Choice(i, "".join(texts[i]), reasons[i], ids[i], logprobs[i] if plan.wants_logprobs else None)
            for i in range(n)
        ]
        return GenerationResponse(
            choices=choices,
            prompt_tokens=len(plan.ids),
            completion_tokens=sum(len(c.token_ids) for c in choices),
            prompt_text=self._prompt_text(plan),
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        plan = self._plan(request)
        prompt_tokens = len(plan.ids)
        if plan.max_new_tokens == 0:
            for i in range(request.n):
                yield StreamChunk(i, "", "length", [] if plan.wants_logprobs else None, prompt_tokens, 0)
            return
        async with contextlib.aclosing(self._pieces(plan, stream=True)) as pieces:
            async for piece in pieces:
                yield StreamChunk(
                    piece.index,
                    piece.text,
                    piece.finish_reason,
                    self._logprobs(piece, plan),
                    prompt_tokens,
                    piece.completion_tokens,
                )
