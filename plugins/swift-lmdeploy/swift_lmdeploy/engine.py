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
swift_core.engines.loop_bridge); a cancelled caller (a client gone, a stream closed) stops the session
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
from typing import Any

import lmdeploy
from lmdeploy import GenerationConfig, PytorchEngineConfig, TurbomindEngineConfig

from swift_core.engines.adapter_folders import choose_template
from swift_core.engines.increments import IncrementalEngine, Piece, Plan
from swift_core.engines.loop_bridge import Emit, LoopBridge
from swift_core.engines.protocol import (
    EngineConfig,
    GenerationRequest,
    TokenLogprob,
    UnsupportedRequest,
)
from swift_core.errors import SwiftError
from swift_lmdeploy.config import build_backend_config, choose_backend, generation_config
from swift_lmdeploy.text import StopCutter, token_logprobs

ENGINE_NAME = "LMDeploy"  # in messages
MAX_TEMPERATURE = 2.0  # GenerationConfig.__post_init__ asserts 0 <= temperature <= 2
_SESSION_BASE = 1 << 40  # our session ids, far from the ones the pipeline's own helpers count from 0


class LmdeployEngine(IncrementalEngine):
    """One LMDeploy pipeline (TurboMind or PyTorch backend, plus LoRA adapters) answering requests.

    What LMDeploy and SGLang share (plans, concurrent choices, assembling answers from increments)
    is `IncrementalEngine`'s; this class keeps how LMDeploy is started, called and stopped."""

    engine_name = ENGINE_NAME

    def __init__(self, config: EngineConfig, manager: Any = None):
        manager, loaded = self._read_config(config, manager)  # loaded: every adapter LMDeploy loads
        config = self.config
        backend = choose_backend(config, bool(loaded))
        template_name, resolved = choose_template(config, loaded, manager)
        backend_config = build_backend_config(
            config,
            backend,
            {a.name: a.path for a in loaded},
            TurbomindEngineConfig,
            PytorchEngineConfig,
        )
        self._load_template(template_name, resolved, manager)
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
        self.max_model_len = self._context_length(getattr(self._engine, "session_len", None), resolved)
        self._session_ids = itertools.count(_SESSION_BASE)
        # Requests without a seed: reproducible per engine when EngineConfig.seed is set.
        self._seeds = random.Random(config.seed) if config.seed is not None else None
        self.capabilities = self._capabilities(
            lora=self.backend == "pytorch" and bool(self._adapters),
            prompt_logprobs=False,  # LMDeploy returns logprobs of generated tokens only
            seed=True,
        )

    # --- life cycle ---------------------------------------------------------------------------

    def _close_pipe(self) -> None:
        with contextlib.suppress(Exception):
            self._pipe.close()

    def _stop_library(self) -> None:
        """Close the pipeline (its engine and loop thread)."""
        self._close_pipe()

    # --- requests -----------------------------------------------------------------------------

    def check_request(self, request: GenerationRequest) -> None:
        if request.adapter is not None and self.backend != "pytorch":
            raise UnsupportedRequest(
                f"adapter {request.adapter!r}: LMDeploy's {self.backend} backend serves no LoRA adapters "
                '(start the engine with --engine_kwargs \'{"backend": "pytorch"}\' and --adapters)'
            )
        super().check_request(request)  # the values every engine refuses
        if request.temperature > MAX_TEMPERATURE:
            raise UnsupportedRequest(f"temperature must be in [0, {MAX_TEMPERATURE}] on LMDeploy")

    def _seed(self, request: GenerationRequest, index: int) -> int | None:
        if request.seed is not None:
            return request.seed + index  # n choices of one seeded request differ, reproducibly
        if self._seeds is not None:
            return self._seeds.getrandbits(63)
        return None

    def _choice_options(self, plan: Plan, index: int) -> Any:
        """LMDeploy's `GenerationConfig` for one choice (one session)."""
        return generation_config(
            GenerationConfig,
            plan.request,
            max_new_tokens=plan.max_new_tokens,
            stop_token_ids=self._stop_ids,
            seed=self._seed(plan.request, index),
        )

    async def _run_choice(self, plan: Plan, index: int, stream: bool, emit: Emit) -> None:
        """On LMDeploy's loop: one session for one choice, its increments handed to `emit`."""
        session_id = next(self._session_ids)
        cutter = StopCutter(plan.request.stop)
        count = 0
        finished = False
        generator = self._engine.generate(
            None,
            session_id,
            gen_config=plan.options[index],
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
                    emit(Piece(index, text, new_ids, "stop", count, out.logprobs))
                    break  # a stop string: end the session now (finally)
                if reason is not None:
                    finished = True
                    emit(Piece(index, text + cutter.flush(), new_ids, reason, count, out.logprobs))
                elif text or new_ids:
                    emit(Piece(index, text, new_ids, None, count, out.logprobs))
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

    def _piece_logprobs(self, piece: Piece, plan: Plan) -> list[TokenLogprob]:
        return token_logprobs(piece.token_ids, piece.data, plan.request.top_logprobs, self._token_text)
