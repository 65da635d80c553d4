"""Which distribution provides a capability that is not installed.

Data only: the core never imports these distributions; it names them in an error so that the
user knows what to `pip install` (or `swift plugins install`).
"""

from __future__ import annotations

KNOWN_PROVIDERS: dict[str, dict[str, str]] = {
    "engines": {
        "vllm": "swift-vllm",
        "lmdeploy": "swift-lmdeploy",
        "sglang": "swift-sglang",
    },
    "quantizers": {
        "bnb": "swift-bnb",
        "gptq": "swift-gptq",
        "awq": "swift-awq",
        "fp8": "swift-fp8",
    },
    "runtimes": {
        "cuda": "swift-cuda",
        "npu": "swift-ascend",
        "mps": "swift-mps",
        "rocm": "swift-rocm",
    },
    "strategies": {
        "deepspeed": "swift-deepspeed",
        "megatron": "swift-megatron",
    },
}


def provider_of(kind: str, name: str) -> str | None:
    return KNOWN_PROVIDERS.get(kind, {}).get(name)
