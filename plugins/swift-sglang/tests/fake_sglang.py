"""A fake of the parts of sglang's Python API that swift_sglang uses, for CPU-only tests.

SGLang needs a GPU (and pip-installing it would pull CUDA builds of torch), so the contract tests
run the adapter against this module, inserted into `sys.modules` as `sglang` (and
`sglang.srt.server_args`). It mirrors the real signatures and result shapes
(python/sglang/srt/entrypoints/engine.py, server_args.py, managers/tokenizer_manager.py,
sampling/sampling_params.py) and the behaviours the adapter depends on:

- `Engine(**kwargs)` builds a `ServerArgs` dataclass from the keywords (an unknown one is a
  TypeError) and parses `lora_paths` "name=path"; `shutdown()`;
- `async_generate(input_ids=, sampling_params=, stream=, rid=, return_logprob=,
  top_logprobs_num=, logprob_start_len=, lora_path=, ...)` returns one output dict, or with
  `stream=True` an async generator of them: `{"text", "output_ids", "meta_info": {"id",
  "finish_reason", "prompt_tokens", "completion_tokens", "output_token_logprobs", ...}}`. Streams
  carry the whole text / ids / logprob lists so far, or, with `incremental_streaming_output`, the
  new part only (both modes exist in SGLang);
- the TokenizerManager binds to the event loop of its first request (a request from another loop
  fails), `abort_request(rid)` ends a running request with finish_reason type "abort";
- sampling params are checked as `SamplingParams.verify` does (repetition_penalty in (0, 2]),
  unset ones would come from the model's defaults (recorded as missing), stop strings are matched
  on the text and trimmed from it, stop token ids end the answer (kept in output_ids, not in the
  text), `temperature=0` is greedy;
- "generation" is deterministic: each token is a function of the ids before it, the sampling seed
  (greedy: none), the repetition penalty and the LoRA adapter, so a test can tell which settings
  reached the engine.

Knobs for tests: `EOS_AFTER` (emit the first stop token id after that many tokens), `STEP_DELAY`
(seconds per token), `ENGINES` (every engine built). The real library is exercised by
bench/gpu/sglang_smoke.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from dataclasses import dataclass
from typing import Any

__version__ = "0.5.0+fake"

EOS_AFTER: int | None = None
STEP_DELAY = 0.0
ENGINES: list[Engine] = []
FIRST_TOKEN, TOKEN_RANGE = 300, 1500  # readable tokens of the tiny test tokenizers
SAMPLING_KEYS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
)


def reset() -> None:
    """The knobs back to their defaults (engines stay: their owners shut them down)."""
    global EOS_AFTER, STEP_DELAY
    EOS_AFTER, STEP_DELAY = None, 0.0


# --- python/sglang/srt/server_args.py ---------------------------------------------------------


@dataclass
class ServerArgs:
    model_path: str
    tokenizer_path: str | None = None
    tokenizer_mode: str = "auto"
    skip_tokenizer_init: bool = False
    load_format: str = "auto"
    trust_remote_code: bool = False
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
    context_length: int | None = None
    device: str | None = None
    served_model_name: str | None = None
    revision: str | None = None
    mem_fraction_static: float | None = None
    max_running_requests: int | None = None
    max_total_tokens: int | None = None
    chunked_prefill_size: int | None = None
    schedule_policy: str = "fcfs"
    tp_size: int = 1
    stream_interval: int = 1
    stream_output: bool = False
    incremental_streaming_output: bool = False
    random_seed: int | None = None
    log_level: str = "info"
    base_gpu_id: int = 0
    enable_lora: bool | None = None
    max_lora_rank: int | None = None
    lora_target_modules: list[str] | None = None
    lora_paths: Any = None
    max_loras_per_batch: int = 8
    lora_backend: str = "triton"
    attention_backend: str | None = None
    sampling_backend: str | None = None
    disable_radix_cache: bool = False
    disable_cuda_graph: bool = False
    enable_deterministic_inference: bool = False
    sampling_defaults: str = "model"

    def __post_init__(self):
        if self.tokenizer_path is None:
            self.tokenizer_path = self.model_path
        if self.dtype not in ("auto", "half", "float16", "bfloat16", "float", "float32"):
            raise ValueError(f"invalid dtype {self.dtype!r}")
        if isinstance(self.lora_paths, list):
            paths = {}
            for item in self.lora_paths:
                name, _, path = item.partition("=")
                paths[name] = path or name
            self.lora_paths = paths
        if self.lora_paths and self.enable_lora is None:
            self.enable_lora = True


# --- python/sglang/srt/managers/tokenizer_manager.py ------------------------------------------


def fake_token(context: list[int], seed: int | None, penalty: float, salt: int) -> int:
    """The fake model: the next token from the last few ids, the seed, the penalty and the adapter."""
    h = (
        sum(context[-4:]) * 31
        + len(context) * 17
        + (seed or 0) * 101
        + int(round(penalty * 1000)) * 7
        + salt * 13
    )
    return FIRST_TOKEN + h % TOKEN_RANGE


def fake_logprob(token_id: int) -> float:
    return -((token_id % 7) + 1) / 10


def fake_top(token_id: int, n: int) -> list[tuple[float, int, None]]:
    """The top-n (logprob, id, text) of a position whose chosen token is `token_id` (chosen first)."""
    others = [
        (fake_logprob(token_id) - k, FIRST_TOKEN + (token_id + k) % TOKEN_RANGE, None) for k in range(1, n)
    ]
    return [(fake_logprob(token_id), token_id, None), *others][:n]


class TokenizerManager:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.context_len = engine.server_args.context_length or 2048
        self.rid_to_state: dict[str, dict[str, Any]] = {}
        self.event_loop: asyncio.AbstractEventLoop | None = None
        self.aborted: list[str] = []

    def auto_create_handle_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self.event_loop is None:
            self.event_loop = loop
        elif self.event_loop is not loop:
            raise RuntimeError("the TokenizerManager is bound to the event loop of its first request")

    def abort_request(self, rid: str = "", abort_all: bool = False) -> None:
        self.aborted.append(rid)
        state = self.rid_to_state.get(rid)
        if state is not None:
            state["aborted"] = True

    def verify(self, params: dict[str, Any]) -> None:
        if not params.get("temperature", 1.0) >= 0:
            raise ValueError("temperature must be non-negative")
        if not 0 < params.get("top_p", 1.0) <= 1:
            raise ValueError("top_p must be in (0, 1]")
        top_k = params.get("top_k", -1)
        if top_k < 1 and top_k != -1:
            raise ValueError(f"top_k must be -1 (disable) or at least 1, got {top_k}.")
        if not 0 < params.get("repetition_penalty", 1.0) <= 2:
            raise ValueError("repetition_penalty must be in (0, 2]")
        if params.get("max_new_tokens", 128) < 0:
            raise ValueError("max_new_tokens must be at least 0")
        if params.get("n", 1) != 1:
            raise NotImplementedError("the fake serves n=1 per request: the adapter fans out")

    async def generate_request(self, obj: dict[str, Any]):
        self.auto_create_handle_loop()
        server_args = self.engine.server_args
        ids = list(obj["input_ids"])
        params = dict(obj.get("sampling_params") or {})
        self.verify(params)
        if len(ids) >= self.context_len:
            raise ValueError(
                f"The input ({len(ids)} tokens) is longer than the model's context length ({self.context_len} tokens)."
            )
        lora = obj.get("lora_path")
        if lora is not None and lora not in (server_args.lora_paths or {}):
            raise ValueError(f"LoRA adapter {lora!r} is not loaded")
        rid = obj.get("rid") or f"fake-{len(self.engine.requests)}"
        self.engine.requests.append(
            {**obj, "rid": rid, "missing_sampling_keys": [k for k in SAMPLING_KEYS if k not in params]}
        )
        state: dict[str, Any] = {"aborted": False}
        self.rid_to_state[rid] = state
        tokenizer = self.engine.tokenizer
        greedy = params.get("temperature", 1.0) < 1e-6 or params.get("top_k", -1) == 1
        seed = None if greedy else params.get("sampling_seed")
        if not greedy and (seed is None or not server_args.enable_deterministic_inference):
            seed = random.getrandbits(32)  # sampling_seed counts only with deterministic inference
        penalty = params.get("repetition_penalty", 1.0)
        salt = sum(map(ord, lora or ""))
        stops = params.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        stop_ids = list(params.get("stop_token_ids") or [])
        if tokenizer.eos_token_id is not None:
            stop_ids.append(tokenizer.eos_token_id)
        want = obj.get("return_logprob", False)
        top_n = obj.get("top_logprobs_num") or 0
        start = obj.get("logprob_start_len")
        stream = obj.get("stream", False)
        incremental = stream and server_args.incremental_streaming_output
        max_new = params.get("max_new_tokens", 128)
        context, generated = list(ids), []
        lps: list[tuple[float, int, None]] = []
        tops: list[list[tuple[float, int, None]]] = []
        text, sent_ids, sent_text = "", 0, 0
        finish: dict[str, Any] | None = None

        def output() -> dict[str, Any]:
            nonlocal sent_ids, sent_text
            meta: dict[str, Any] = {
                "id": rid,
                "finish_reason": finish,
                "prompt_tokens": len(ids),
                "completion_tokens": len(generated),
                "cached_tokens": 0,
            }
            lo_ids, lo_text = (sent_ids, sent_text) if incremental else (0, 0)
            if want:
                meta["output_token_logprobs"] = lps[lo_ids:]
                meta["output_top_logprobs"] = tops[lo_ids:]
                if start == 0:
                    meta["input_token_logprobs"] = [(None, ids[0], None)] + [
                        (fake_logprob(t), t, None) for t in ids[1:]
                    ]
                    meta["input_top_logprobs"] = [None] + [fake_top(t, top_n) for t in ids[1:]]
                else:
                    meta["input_token_logprobs"], meta["input_top_logprobs"] = [], []
            out = {"text": text[lo_text:], "output_ids": generated[lo_ids:], "meta_info": meta}
            sent_ids, sent_text = len(generated), len(text)
            return out

        try:
            while finish is None:
                if state["aborted"]:
                    finish = {"type": "abort", "message": "Abort in waiting queue", "status_code": 500}
                    break
                if len(generated) >= max_new:
                    finish = {"type": "length", "length": len(generated)}
                    break
                await asyncio.sleep(STEP_DELAY)
                if EOS_AFTER is not None and len(generated) == EOS_AFTER and stop_ids:
                    token = stop_ids[0]
                    finish = {"type": "stop", "matched": token}
                else:
                    token = fake_token(context, seed, penalty, salt)
                context.append(token)
                generated.append(token)
                lps.append((fake_logprob(token), token, None))
                tops.append(fake_top(token, top_n))
                text = tokenizer.decode(
                    generated, skip_special_tokens=params.get("skip_special_tokens", True)
                )
                hits = sorted((text.find(s), s) for s in stops if s in text)
                if hits and finish is None:
                    text = text[: hits[0][0]]  # no_stop_trim=False: the stop string is trimmed
                    finish = {"type": "stop", "matched": hits[0][1]}
                if stream and finish is None:
                    yield output()
            yield output()
        finally:
            self.rid_to_state.pop(rid, None)


# --- python/sglang/srt/entrypoints/engine.py --------------------------------------------------


class Engine:
    def __init__(self, **kwargs: Any):
        from transformers import AutoTokenizer

        if "server_args" in kwargs:
            server_args = kwargs["server_args"]
        else:
            kwargs.setdefault("log_level", "error")
            server_args = ServerArgs(**kwargs)
        self.server_args = server_args
        self.kwargs = kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(server_args.tokenizer_path)
        self.tokenizer_manager = TokenizerManager(self)
        self.requests: list[dict[str, Any]] = []
        self.shut_down = False
        ENGINES.append(self)

    async def async_generate(
        self,
        prompt: str | list[str] | None = None,
        sampling_params: dict | None = None,
        input_ids: list[int] | None = None,
        image_data: Any = None,
        return_logprob: bool = False,
        logprob_start_len: int | None = None,
        top_logprobs_num: int | None = None,
        token_ids_logprob: list[int] | None = None,
        lora_path: str | None = None,
        custom_logit_processor: str | None = None,
        return_hidden_states: bool = False,
        stream: bool = False,
        bootstrap_host: str | None = None,
        bootstrap_port: int | None = None,
        bootstrap_room: int | None = None,
        data_parallel_rank: int | None = None,
        rid: str | None = None,
    ):
        if prompt is not None or input_ids is None:
            raise NotImplementedError("the fake takes input_ids only")
        obj = {
            "input_ids": input_ids,
            "sampling_params": sampling_params,
            "return_logprob": return_logprob,
            "logprob_start_len": logprob_start_len,
            "top_logprobs_num": top_logprobs_num,
            "lora_path": lora_path,
            "stream": stream,
            "rid": rid,
        }
        generator = self.tokenizer_manager.generate_request(obj)
        if stream is True:
            return generator
        return await generator.__anext__()

    def shutdown(self) -> None:
        self.shut_down = True


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(ServerArgs)]
