"""Swift's `EngineConfig` and `GenerationRequest` as SGLang's `ServerArgs` keywords and
`sampling_params` dict.

The names of `ServerArgs`'s fields (python/sglang/srt/server_args.py, a dataclass) are passed
in, so this module imports nothing of sglang. Every key of `EngineConfig.extra` must be one of
them; an unknown key is refused with a did-you-mean before SGLang starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from swift_core.engines.protocol import EngineConfig, GenerationRequest
from swift_core.errors import SwiftError, nearest

MAX_REPETITION_PENALTY = 2.0  # SamplingParams.verify: 0 < repetition_penalty <= 2


def server_args_kwargs(
    config: EngineConfig, model_path: str, adapters: dict[str, str], arg_names: Iterable[str]
) -> dict[str, Any]:
    """`sglang.Engine(**kwargs)` keywords from Swift's config; `extra` overrides."""
    names = set(arg_names)
    kwargs: dict[str, Any] = {
        "model_path": model_path,
        "tokenizer_path": model_path,
        "max_running_requests": max(1, int(config.max_batch_size)),
    }
    if config.torch_dtype:
        kwargs["dtype"] = config.torch_dtype
    if config.max_model_len:
        kwargs["context_length"] = int(config.max_model_len)
    if config.seed is not None:
        kwargs["random_seed"] = int(config.seed)
    if config.served_model_name:
        kwargs["served_model_name"] = config.served_model_name
    device, _, index = (config.device or "auto").lower().partition(":")
    if device != "auto":
        kwargs["device"] = "cuda" if device == "gpu" else device
        if index:
            kwargs["base_gpu_id"] = int(index)
    if adapters:
        # "name=path" is the form every version parses (the CLI's --lora-paths spelling).
        kwargs["lora_paths"] = [f"{name}={path}" for name, path in adapters.items()]
        kwargs["enable_lora"] = True  # dropped below by versions that infer it from lora_paths
    extra = dict(config.extra)
    unknown = sorted(k for k in extra if k not in names)
    if unknown:
        hints = []
        for key in unknown:
            close = nearest(key, sorted(names))
            hints.append(f"{key!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        raise SwiftError(
            f"unknown SGLang engine option(s): {', '.join(hints)}. --engine_kwargs takes the fields of "
            "sglang's ServerArgs (python/sglang/srt/server_args.py)"
        )
    if extra.get("skip_tokenizer_init"):
        raise SwiftError(
            "skip_tokenizer_init is not supported: Swift needs SGLang's detokenizer for the answer's text "
            "and its stop strings"
        )
    kwargs.update(extra)
    return {k: v for k, v in kwargs.items() if k in names}


def sampling_params(
    request: GenerationRequest, *, max_new_tokens: int, stop_token_ids: list[int], seed: int | None
) -> dict[str, Any]:
    """SGLang's `sampling_params` for one choice.

    Every sampling field is set, because SGLang otherwise fills unset ones from the model's
    generation_config.json (`--sampling-defaults model`, its default), and Swift's requests state
    their own settings. `temperature=0` is greedy in SGLang (top_k becomes 1); `top_k=-1` is the
    whole vocabulary. Stop strings are SGLang's (matched on the text and trimmed from it).
    """
    params: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k if request.top_k > 0 else -1,
        "min_p": 0.0,
        "repetition_penalty": request.repetition_penalty,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
        "n": 1,
        "skip_special_tokens": True,
    }
    if request.stop:
        params["stop"] = [s for s in request.stop if s]
    if stop_token_ids:
        params["stop_token_ids"] = list(stop_token_ids)
    if seed is not None:
        params["sampling_seed"] = seed
    return params
