"""A fake of the parts of lmdeploy's Python API that swift_lmdeploy uses, for CPU-only tests.

LMDeploy needs a CUDA GPU (and pip-installing it would pull CUDA builds of torch), so the contract
tests run the adapter against this module, inserted into `sys.modules` as `lmdeploy`. It mirrors
the real signatures and result shapes (v0.7-v0.10: lmdeploy/api.py, lmdeploy/messages.py,
lmdeploy/serve/async_engine.py) and the behaviours the adapter depends on:

- `pipeline()` returns an `AsyncEngine` with `backend`, `session_len`, an `internal_thread` whose
  loop the engine is bound to (`generate` on any other loop fails, as a bound PyTorch engine does),
  `generate(messages, session_id, gen_config, ..., adapter_name, input_ids)` yielding `GenOut`s
  whose text and token ids are increments, the last one with `finish_reason`, `stop_session`,
  `close`;
- `GenerationConfig` with lmdeploy's fields and its `__post_init__` asserts; `do_sample=False`
  means greedy and resets `repetition_penalty` to 1.0 (as AsyncEngine.generate does); `n > 1`
  falls back to 1; the stop token is not part of the output;
- "generation" is deterministic: each token is a function of the ids before it, the sampling seed
  (unless top_k == 1: greedy) and the repetition penalty, so a test can tell which settings
  reached the engine. Logprobs are `{token_id: logprob}` per token: the top `logprobs` ids, the
  chosen one first.

Knobs for tests: `EOS_AFTER` (emit the first stop token id after that many tokens), `STEP_DELAY`
(seconds per streamed token), and `ENGINES` (every engine built, to inspect what it received).
The real library is exercised by bench/gpu/lmdeploy_smoke.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Literal

__version__ = "0.10.0+fake"

EOS_AFTER: int | None = None
STEP_DELAY = 0.0
ENGINES: list[AsyncEngine] = []
FIRST_TOKEN, TOKEN_RANGE = 300, 1500  # readable tokens of the tiny test tokenizers


def reset() -> None:
    """The knobs back to their defaults (engines stay: their owners close them)."""
    global EOS_AFTER, STEP_DELAY
    EOS_AFTER, STEP_DELAY = None, 0.0


# --- lmdeploy/messages.py ---------------------------------------------------------------------


@dataclass
class GenerationConfig:
    n: int = 1
    max_new_tokens: int = 512
    do_sample: bool = False
    top_p: float = 1.0
    top_k: int = 50
    min_p: float = 0.0
    temperature: float = 0.8
    repetition_penalty: float = 1.0
    ignore_eos: bool = False
    random_seed: int | None = None
    stop_words: list[str] | None = None
    bad_words: list[str] | None = None
    stop_token_ids: list[int] | None = None
    bad_token_ids: list[int] | None = None
    min_new_tokens: int | None = None
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    logprobs: int | None = None
    response_format: dict | None = None
    logits_processors: list | None = None
    output_logits: Literal["all", "generation"] | None = None
    output_last_hidden_state: Literal["all", "generation"] | None = None
    include_stop_str_in_output: bool = False

    def __post_init__(self):
        assert type(self.n) is int and self.n > 0, "n is not a positive integer"
        assert 0 <= self.top_p <= 1
        assert self.top_k >= 0, "top_k can not be a negative integer"
        assert 0 <= self.temperature <= 2
        assert 0 <= self.min_p <= 1


@dataclass
class TurbomindEngineConfig:
    dtype: str = "auto"
    model_format: str | None = None
    tp: int = 1
    session_len: int | None = None
    max_batch_size: int | None = None
    cache_max_entry_count: float = 0.8
    cache_chunk_size: int = -1
    cache_block_seq_len: int = 64
    enable_prefix_caching: bool = False
    quant_policy: int = 0
    rope_scaling_factor: float = 0.0
    use_logn_attn: bool = False
    download_dir: str | None = None
    revision: str | None = None
    max_prefill_token_num: int = 8192
    num_tokens_per_iter: int = 0
    max_prefill_iters: int = 1
    communicator: str = "nccl"

    def __post_init__(self):
        assert self.dtype in ["auto", "float16", "bfloat16"]
        assert self.tp >= 1, "tp must be a positive integer"
        assert 0 < self.cache_max_entry_count < 1, "invalid cache_max_entry_count"
        assert self.quant_policy in (0, 4, 8), "invalid quant_policy"


@dataclass
class PytorchEngineConfig:
    dtype: str = "auto"
    tp: int = 1
    dp: int = 1
    ep: int = 1
    dp_rank: int = 0
    session_len: int | None = None
    max_batch_size: int | None = None
    cache_max_entry_count: float = 0.8
    prefill_interval: int = 16
    block_size: int = 64
    num_cpu_blocks: int = 0
    num_gpu_blocks: int = 0
    adapters: dict[str, str] | None = None
    max_prefill_token_num: int = 4096
    thread_safe: bool = False
    enable_prefix_caching: bool = False
    device_type: str = "cuda"
    eager_mode: bool = False
    custom_module_map: dict[str, str] | None = None
    download_dir: str | None = None
    revision: str | None = None
    quant_policy: Literal[0, 4, 8] = 0
    distributed_executor_backend: str | None = None

    def __post_init__(self):
        assert self.dtype in ["auto", "float16", "bfloat16"]
        assert self.tp >= 1, "invalid tp"
        assert 0 < self.cache_max_entry_count < 1, "invalid cache_max_entry_count"
        assert self.device_type in ["cuda", "ascend", "maca", "camb"], (
            f"invalid device_type: {self.device_type}"
        )


@dataclass
class ChatTemplateConfig:
    model_name: str | None = None


# --- lmdeploy/serve/async_engine.py -----------------------------------------------------------


@dataclass
class GenOut:
    response: str
    history_token_len: int
    input_token_len: int
    generate_token_len: int
    finish_reason: Literal["stop", "length", "error", "abort"] | None = None
    token_ids: list[int] | None = None
    logprobs: list[dict[int, float]] | None = None


class _EventLoopThread:
    def __init__(self):
        ready: concurrent.futures.Future = concurrent.futures.Future()

        def main():
            loop = asyncio.new_event_loop()
            ready.set_result(loop)
            loop.run_forever()

        self.thread = threading.Thread(target=main, name="fake-lmdeploy-internal", daemon=True)
        self.thread.start()
        self.loop: asyncio.AbstractEventLoop = ready.result()

    def close(self):
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


def fake_token(context: list[int], seed: int | None, penalty: float) -> int:
    """The fake model: the next token from the last few ids, the sampling seed and the penalty."""
    h = sum(context[-4:]) * 31 + len(context) * 17 + (seed or 0) * 101 + int(round(penalty * 1000)) * 7
    return FIRST_TOKEN + h % TOKEN_RANGE


def fake_logprob(token_id: int) -> float:
    return -((token_id % 7) + 1) / 10


class AsyncEngine:
    def __init__(self, model_path: str, backend: str, backend_config: Any, **kwargs: Any):
        from transformers import AutoTokenizer

        self.model_path = model_path
        self.backend = backend
        self.backend_config = backend_config
        self.kwargs = kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.session_len = backend_config.session_len or 2048
        self.internal_thread = _EventLoopThread()
        self.requests: list[dict[str, Any]] = []  # what generate() received
        self.running: set[int] = set()
        self.stopped: list[int] = []  # stop_session calls
        self.cancelled: list[int] = []  # sessions whose generator was cancelled or closed early
        self._stop_flags: set[int] = set()
        self.closed = False

    async def stop_session(self, session_id: int):
        self.stopped.append(session_id)
        if session_id in self.running:
            self._stop_flags.add(session_id)

    def close(self):
        self.closed = True
        self.internal_thread.close()

    async def generate(
        self,
        messages,
        session_id: int,
        gen_config: GenerationConfig | None = None,
        tools=None,
        reasoning_effort=None,
        stream_response: bool = True,
        sequence_start: bool = True,
        sequence_end: bool = True,
        step: int = 0,
        do_preprocess: bool = True,
        adapter_name: str | None = None,
        rewind_stop_tokens: bool = False,
        input_ids: list | None = None,
        enable_thinking: bool | None = None,
        **kwargs,
    ):
        if asyncio.get_running_loop() is not self.internal_thread.loop:
            raise RuntimeError("the engine is bound to its internal_thread loop")
        if (messages is not None) ^ (input_ids is None):
            raise ValueError("You must specify exactly one of messages or input_ids")
        if messages is not None:
            raise NotImplementedError("the fake renders no chat template: pass input_ids")
        gen_config = dataclasses.replace(gen_config or GenerationConfig())
        if adapter_name is not None:
            adapters = getattr(self.backend_config, "adapters", None) or {}
            assert adapter_name in adapters, f"unknown adapter {adapter_name}"
        if not gen_config.do_sample:  # as AsyncEngine.generate: greedy, and no penalty
            gen_config.top_k, gen_config.temperature, gen_config.repetition_penalty = 1, 1.0, 1.0
        if gen_config.n > 1:
            gen_config.n = 1  # "n > 1 hasn't been supported yet. Fallback to 1"
        eos = self.tokenizer.eos_token_id
        stop_ids = list(gen_config.stop_token_ids or []) + ([eos] if eos is not None else [])
        self.requests.append(
            {
                "session_id": session_id,
                "input_ids": list(input_ids),
                "gen_config": gen_config,
                "adapter_name": adapter_name,
                "do_preprocess": do_preprocess,
                "stream_response": stream_response,
                "sequence_start": sequence_start,
                "sequence_end": sequence_end,
            }
        )
        seed = None if gen_config.top_k == 1 else (gen_config.random_seed or 0)
        salt = sum(map(ord, adapter_name or ""))
        context = list(input_ids)
        generated: list[int] = []
        pending_ids: list[int] = []
        pending_lps: list[dict[int, float]] = []
        text_sent = ""
        finish = "length"
        self.running.add(session_id)
        try:
            for step_no in range(gen_config.max_new_tokens):
                if session_id in self._stop_flags:
                    finish = "abort"
                    break
                if EOS_AFTER is not None and step_no == EOS_AFTER and stop_ids:
                    finish = "stop"  # the stop token is generated but not returned
                    break
                token = fake_token(
                    context, None if seed is None else seed + salt, gen_config.repetition_penalty
                )
                token = token if not salt else FIRST_TOKEN + (token + salt) % TOKEN_RANGE
                context.append(token)
                generated.append(token)
                pending_ids.append(token)
                if gen_config.logprobs:
                    entry = {token: fake_logprob(token)}
                    for k in range(1, gen_config.logprobs):
                        entry[FIRST_TOKEN + (token + k) % TOKEN_RANGE] = fake_logprob(token) - k
                    pending_lps.append(entry)
                await asyncio.sleep(STEP_DELAY)  # one decoding step
                if stream_response:
                    text = self.tokenizer.decode(
                        generated, skip_special_tokens=gen_config.skip_special_tokens
                    )
                    yield GenOut(
                        text[len(text_sent) :],
                        0,
                        len(input_ids),
                        len(generated),
                        None,
                        token_ids=pending_ids,
                        logprobs=pending_lps or None,
                    )
                    text_sent, pending_ids, pending_lps = text, [], []
            if not stream_response and generated:
                text = self.tokenizer.decode(generated, skip_special_tokens=gen_config.skip_special_tokens)
                yield GenOut(
                    text,
                    0,
                    len(input_ids),
                    len(generated),
                    None,
                    token_ids=pending_ids,
                    logprobs=pending_lps or None,
                )
            yield GenOut("", 0, len(input_ids), len(generated), finish, token_ids=[])
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled.append(session_id)  # safe_run: inst.async_cancel(session_id)
            raise
        finally:
            self.running.discard(session_id)
            self._stop_flags.discard(session_id)


# --- lmdeploy/api.py --------------------------------------------------------------------------


def pipeline(
    model_path: str,
    backend_config: TurbomindEngineConfig | PytorchEngineConfig | None = None,
    chat_template_config: ChatTemplateConfig | None = None,
    log_level: str = "WARNING",
    max_log_len: int | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    backend = "pytorch" if type(backend_config) is PytorchEngineConfig else "turbomind"
    engine = AsyncEngine(
        model_path,
        backend,
        backend_config or TurbomindEngineConfig(),
        chat_template_config=chat_template_config,
        log_level=log_level,
        **kwargs,
    )
    ENGINES.append(engine)
    return engine
