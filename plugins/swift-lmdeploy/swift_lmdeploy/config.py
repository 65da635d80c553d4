"""Swift's `EngineConfig` and `GenerationRequest` as LMDeploy's configuration objects.

The classes are passed in (`TurbomindEngineConfig`, `PytorchEngineConfig`, `GenerationConfig`
from `lmdeploy/messages.py`), so this module imports nothing of lmdeploy and the mapping can be
read and tested on its own.

Backend: `EngineConfig.extra["backend"]` is `"turbomind"`, `"pytorch"` or `"auto"` (the default:
PyTorch when adapters are served, because TurboMind has no LoRA support, TurboMind otherwise, which
`lmdeploy.pipeline` itself replaces by PyTorch for architectures TurboMind lacks). Every other key
of `extra` is a field of the chosen backend's config dataclass; an unknown one is refused with a
did-you-mean before anything loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from swift_core.engines.protocol import EngineConfig, GenerationRequest
from swift_core.errors import SwiftError, nearest

BACKENDS = ("turbomind", "pytorch")
# Keys of EngineConfig.extra the plugin reads itself; the others go to the backend config.
RESERVED = ("backend", "log_level")
# --torch_dtype -> lmdeploy's `dtype` (both backends accept only these).
DTYPES = {"auto": "auto", "float16": "float16", "half": "float16", "bfloat16": "bfloat16"}
# --device -> PyTorchEngineConfig.device_type (TurboMind runs on CUDA only).
PYTORCH_DEVICES = {"npu": "ascend", "ascend": "ascend", "maca": "maca", "camb": "camb"}
CUDA_DEVICES = ("auto", "cuda", "gpu")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def choose_backend(config: EngineConfig, has_adapters: bool) -> str:
    """The backend to ask for; `auto` takes PyTorch when there are adapters."""
    backend = str(config.extra.get("backend", "auto")).lower()
    if backend not in ("auto", *BACKENDS):
        close = nearest(backend, ["auto", *BACKENDS], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SwiftError(f"lmdeploy backend {backend!r}{hint}: use one of auto, turbomind, pytorch")
    if backend == "auto":
        return "pytorch" if has_adapters else "turbomind"
    if backend == "turbomind" and has_adapters:
        raise SwiftError(
            "LMDeploy's TurboMind backend serves no LoRA adapters; use the PyTorch backend "
            '(--engine_kwargs \'{"backend": "pytorch"}\') or merge the adapter '
            "(swift export --merge_lora) and serve the result"
        )
    return backend


def backend_kwargs(
    config: EngineConfig, backend: str, adapters: dict[str, str], turbomind_cls: type, pytorch_cls: type
) -> dict[str, Any]:
    """Keywords of the backend's config dataclass, from Swift's config; `extra` overrides."""
    cls, other = (pytorch_cls, turbomind_cls) if backend == "pytorch" else (turbomind_cls, pytorch_cls)
    names = field_names(cls)
    kwargs: dict[str, Any] = {"max_batch_size": max(1, int(config.max_batch_size))}
    if config.torch_dtype:
        dtype = DTYPES.get(config.torch_dtype)
        if dtype is None:
            raise SwiftError(
                f"--torch_dtype {config.torch_dtype}: LMDeploy runs float16 or bfloat16 (or auto: the "
                "checkpoint's, float32 checkpoints as float16)"
            )
        kwargs["dtype"] = dtype
    if config.max_model_len:
        kwargs["session_len"] = int(config.max_model_len)
    device = (config.device or "auto").lower().split(":")[0]
    if device in PYTORCH_DEVICES and backend == "pytorch":
        kwargs["device_type"] = PYTORCH_DEVICES[device]
    elif device not in CUDA_DEVICES:
        where = ", ".join(sorted(PYTORCH_DEVICES))
        raise SwiftError(
            f"--device {config.device}: LMDeploy runs on CUDA GPUs (the PyTorch backend also on {where})"
        )
    if adapters:
        kwargs["adapters"] = dict(adapters)
    extra = {k: v for k, v in config.extra.items() if k not in RESERVED}
    unknown = sorted(k for k in extra if k not in names)
    if unknown:
        hints = []
        for key in unknown:
            if key in field_names(other):
                hints.append(f"{key!r} (an option of {other.__name__}: choose its backend)")
                continue
            close = nearest(key, names)
            hints.append(f"{key!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        raise SwiftError(
            f"unknown LMDeploy engine option(s) for the {backend} backend: {', '.join(hints)}. "
            f"--engine_kwargs takes {', '.join(RESERVED)} and the fields of lmdeploy's {cls.__name__}"
        )
    kwargs.update(extra)
    return {k: v for k, v in kwargs.items() if k in names}


def build_backend_config(
    config: EngineConfig, backend: str, adapters: dict[str, str], turbomind_cls: type, pytorch_cls: type
) -> Any:
    cls = pytorch_cls if backend == "pytorch" else turbomind_cls
    kwargs = backend_kwargs(config, backend, adapters, turbomind_cls, pytorch_cls)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:  # lmdeploy checks values with asserts
        raise SwiftError(f"invalid LMDeploy engine options for {cls.__name__} {kwargs}: {exc}") from None


def generation_config(
    cls: type,
    request: GenerationRequest,
    *,
    max_new_tokens: int,
    stop_token_ids: list[int],
    seed: int | None,
) -> Any:
    """lmdeploy's GenerationConfig for one choice.

    `do_sample` is always True: with `do_sample=False` LMDeploy decodes greedily but also resets
    `repetition_penalty` to 1.0 (AsyncEngine.generate, "avoid unnecessary process"). Greedy
    decoding is asked for as `top_k=1` instead, which keeps the penalty. Stop strings are not
    passed (see swift_lmdeploy.text); the template's stop tokens are, and LMDeploy adds the
    model's EOS from generation_config.json.
    """
    greedy = request.temperature == 0
    wants_logprobs = request.logprobs or request.top_logprobs > 0
    return cls(
        n=1,
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=1.0 if greedy else request.temperature,
        top_p=1.0 if greedy else request.top_p,
        top_k=1 if greedy else (request.top_k if request.top_k > 0 else 0),  # 0: no top-k
        repetition_penalty=request.repetition_penalty,
        random_seed=seed,
        stop_token_ids=list(stop_token_ids) or None,
        skip_special_tokens=True,
        logprobs=max(1, request.top_logprobs) if wants_logprobs else None,
    )
