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

All SGLang calls run on one loop thread (swift_core.engines.loop_bridge): the TokenizerManager binds to the
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
from typing import Any

import sglang
from sglang.srt.server_args import ServerArgs

from swift_core.engines.adapter_folders import choose_template
from swift_core.engines.increments import IncrementalEngine, Piece, Plan
from swift_core.engines.loop_bridge import Emit, LoopBridge
from swift_core.engines.protocol import (
    EngineConfig,
    GenerationRequest,
    GenerationResponse,
    TokenLogprob,
    UnsupportedRequest,
)
from swift_core.errors import SwiftError
from swift_sglang.config import MAX_REPETITION_PENALTY, sampling_params, server_args_kwargs
from swift_sglang.text import ChunkReader, Increment, finish_kind, token_logprobs

SERVER_ARG_NAMES = [f.name for f in dataclasses.fields(ServerArgs)]
ENGINE_NAME = "SGLang"  # in messages


class SglangEngine(IncrementalEngine):
    """One SGLang engine (plus LoRA adapters) answering Swift requests.

    What SGLang and LMDeploy share (plans, concurrent choices, assembling answers from increments)
    is `IncrementalEngine`'s; this class keeps how SGLang is started, called and aborted."""

    engine_name = ENGINE_NAME

    def __init__(self, config: EngineConfig, manager: Any = None):
        manager, loaded = self._read_config(config, manager)  # loaded: every adapter SGLang loads
        config = self.config
        template_name, resolved = choose_template(config, loaded, manager)
        kwargs = server_args_kwargs(
            config, resolved.model, {a.name: a.path for a in loaded}, SERVER_ARG_NAMES
        )
        self._load_template(template_name, resolved, manager)
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
        tokenizer_manager = getattr(self._engine, "tokenizer_manager", None)
        self.max_model_len = self._context_length(getattr(tokenizer_manager, "context_len", None), resolved)
        self.capabilities = self._capabilities(
            lora=bool(self._adapters),
            prompt_logprobs=True,
            seed=deterministic,  # sampling_seed is honoured by deterministic inference only
        )

    # --- life cycle ---------------------------------------------------------------------------

    def _stop_library(self) -> None:
        """Stop SGLang's scheduler and detokenizer processes."""
        with contextlib.suppress(Exception):
            self._engine.shutdown()

    # --- requests -----------------------------------------------------------------------------

    def check_request(self, request: GenerationRequest) -> None:
        super().check_request(request)  # the values every engine refuses
        if request.repetition_penalty > MAX_REPETITION_PENALTY:
            raise UnsupportedRequest(f"repetition_penalty must be in (0, {MAX_REPETITION_PENALTY}] on SGLang")

    def _choice_options(self, plan: Plan, index: int) -> Any:
        """SGLang's sampling_params for one choice (one request)."""
        request = plan.request
        return sampling_params(
            request,
            max_new_tokens=plan.max_new_tokens,
            stop_token_ids=self._stop_ids,
            seed=None if request.seed is None else request.seed + index,
        )

    def _abort(self, rid: str) -> None:
        with contextlib.suppress(Exception):
            self._engine.tokenizer_manager.abort_request(rid=rid)

    async def _run_choice(self, plan: Plan, index: int, stream: bool, emit: Emit) -> None:
        """On the engine loop: one SGLang request for one choice, its increments handed to `emit`."""
        rid = f"swift-{uuid.uuid4().hex}"
        kwargs: dict[str, Any] = {
            "input_ids": list(plan.ids),
            "sampling_params": plan.options[index],
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
        emit(Piece(index, increment.text, increment.token_ids, kind, increment.completion_tokens, increment))
        return kind is not None

    def _piece_logprobs(self, piece: Piece, plan: Plan) -> list[TokenLogprob]:
        inc = piece.data
        return token_logprobs(inc.logprobs, inc.top_logprobs, plan.request.top_logprobs, self._token_text)

    def _prompt_logprobs(self, meta: dict[str, Any], plan: Plan) -> list[TokenLogprob]:
        entries = meta.get("input_token_logprobs") or []
        out = token_logprobs(
            entries, meta.get("input_top_logprobs"), plan.request.top_logprobs, self._token_text
        )
        if out:
            out[0].logprob, out[0].top = None, []  # nothing predicts the first token
        return out

    def _calls_without_new_tokens(self, plan: Plan) -> int:
        """Nothing to generate: SGLang is asked (max_new_tokens=0) only for prompt logprobs."""
        return 1 if plan.wants_prompt_logprobs else 0

    def _finish_response(self, response: GenerationResponse, plan: Plan, last: list[Piece | None]) -> None:
        """Prompt logprobs (echo with logprobs) come with choice 0's output."""
        if plan.wants_prompt_logprobs:
            first = last[0]
            response.prompt_logprobs = self._prompt_logprobs(first.data.meta if first else {}, plan)
