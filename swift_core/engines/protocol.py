"""The inference-engine protocol: what `swift infer` and `swift deploy` talk to.

Every engine (the built-in transformers engine, vLLM, LmDeploy, SGLang, a third party's) is a
plugin whose factory builds an `InferenceEngine` from an `EngineConfig`. The engine declares what
it supports in `EngineCapabilities`; `check_request` refuses what it does not support with a
clear error instead of silently ignoring it. Prompts are rendered by Swift's chat template (the
one training used) before they reach an engine, so training and serving see the same text.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from swift_core.engines.constraints import OutputConstraint
from swift_core.errors import SwiftError
from swift_core.templates.tool_calls import HERMES, ToolCallFormat

# Below this temperature a request is greedy: dividing logits by ~1e-39 overflows to inf and no
# distribution is left to sample (vLLM uses the same threshold).
SAMPLING_EPS = 1e-5
# A repetition penalty outside this range makes the logits it divides or multiplies infinite.
REPETITION_PENALTY_RANGE = (1e-2, 1e2)
# What a seed may be (torch.manual_seed's range: a signed or unsigned 64-bit integer).
SEED_RANGE = (-(1 << 63), (1 << 64) - 1)
# Counts (max_tokens, top_k) beyond this overflow the integer tensors and messages of libraries.
MAX_COUNT = (1 << 31) - 1


def is_greedy(temperature: float) -> bool:
    """Whether a request of this temperature takes the most likely token (see SAMPLING_EPS)."""
    return temperature < SAMPLING_EPS


class UnsupportedRequest(SwiftError):
    """The request asks for something this engine cannot do (HTTP 400 in the server)."""


class PromptTooLong(UnsupportedRequest):
    """The prompt (plus room for one new token) exceeds the model's context (HTTP 400)."""


@dataclass
class EngineConfig:
    model: str  # a local folder (or hub id) of the base or merged model
    template: str | None = None  # the chat template name; default: the model family's
    model_type: str | None = None
    adapters: dict[str, str] = field(default_factory=dict)  # served name -> adapter checkpoint folder
    served_model_name: str | None = None
    torch_dtype: str | None = None
    device: str = "auto"
    max_model_len: int | None = None
    max_batch_size: int = 16
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # engine-specific options (--engine_kwargs)
    # The engine's own options: its descriptor's options dataclass filled from the flags (None
    # when the engine declares none); read with swift_core.config.options.options_for.
    options: Any = None
    # The user's --trust_remote_code: a model folder's own Python runs only when True (and the
    # policy allows it; swift_core.models.remote_code).
    trust_remote_code: bool = False


@dataclass
class EngineCapabilities:
    lora: bool = False  # adapters chosen per request
    logprobs: bool = False  # logprobs / top_logprobs of generated tokens
    prompt_logprobs: bool = False  # echo with prompt logprobs (lm-eval loglikelihood)
    streaming: bool = True
    multiple_choices: bool = False  # n > 1
    seed: bool = False
    repetition_penalty: bool = True
    top_k: bool = True
    max_top_logprobs: int = 0
    images: bool = False  # GenerationRequest.images: its model reads images (vision-language)
    # The OutputConstraint kinds (swift_core.engines.constraints) it enforces while decoding.
    constraints: frozenset[str] = frozenset()
    scores: bool = False  # score(): a reward model's scores of conversations (POST /v1/score)


@dataclass
class GenerationRequest:
    messages: list[dict[str, Any]] | None = None  # chat: rendered by the template
    prompt: str | list[int] | None = None  # completion: raw text or token ids, no template
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1  # -1: off
    repetition_penalty: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    echo: bool = False  # completion: include the prompt (and its logprobs when logprobs is set)
    adapter: str | None = None  # a served adapter name; None: the base model
    tools: list[dict[str, Any]] | None = None
    template_options: dict[str, Any] = field(default_factory=dict)  # e.g. enable_thinking
    # Images of a chat request, one per <image> tag in its messages (vision-language models):
    # data: URLs, PIL images, local paths or http(s) URLs (swift_core.multimodal.engine_inputs).
    images: list[Any] = field(default_factory=list)
    # Structured outputs: the answer must match this (response_format, guided_*); None: free text.
    constraint: OutputConstraint | None = None


@dataclass
class TokenLogprob:
    token: str
    token_id: int
    logprob: float | None  # None for the first prompt token (nothing predicts it)
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Choice:
    index: int
    text: str
    finish_reason: str  # "stop" | "length"
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None


@dataclass
class GenerationResponse:
    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int
    prompt_logprobs: list[TokenLogprob] | None = None
    prompt_text: str | None = None


@dataclass
class StreamChunk:
    """An increment of one choice: new text (and its logprobs); the last one has finish_reason."""

    index: int
    text: str
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class InferenceEngine(ABC):
    """One loaded model (plus adapters) answering requests."""

    capabilities: EngineCapabilities = EngineCapabilities()
    model_name: str = ""
    # Other names the base model answers to (swift_core.engines.served_names: the hub id an alias
    # or a folder stands for); the server lists them in /v1/models and routes them to the model.
    model_aliases: tuple[str, ...] = ()
    max_model_len: int = 0

    def adapter_names(self) -> list[str]:
        return []

    async def score(self, conversations: list[dict[str, Any]]) -> list[tuple[float | None, str | None]]:
        """(score, error) of each conversation (`{"messages": [...]}`, final answer included), for
        engines whose model scores (capabilities.scores); others refuse."""
        raise UnsupportedRequest("this model writes answers; it has no score head (serve a reward model)")

    def metrics(self) -> dict[str, Any]:
        """The engine's own numbers for the server's /metrics: `queue_depth` (rows waiting),
        `batches` (generate calls so far), `batch_sizes` (rows -> how many batches had that many);
        any may be missing (an engine that keeps none returns {})."""
        return {}

    @property
    def tool_call_format(self) -> ToolCallFormat:
        """How this engine's model writes tool calls: its chat template's syntax (Hermes without one)."""
        return getattr(getattr(self, "template", None), "tool_calls", None) or HERMES

    def check_request(self, request: GenerationRequest) -> None:
        """Raise `UnsupportedRequest` naming the option that is invalid, or that this engine cannot
        honour. An engine adds its own limits (e.g. a maximum temperature) after calling this."""
        caps = self.capabilities
        if (request.messages is None) == (request.prompt is None):
            raise UnsupportedRequest("give either messages (chat) or prompt (completion)")
        if request.images and not caps.images:
            raise UnsupportedRequest(
                "this engine's model does not take images (serve a vision-language model such as Qwen2-VL "
                "with the transformers engine)"
            )
        # Values no engine can mean (validity, before what this engine supports):
        if not 0 <= request.max_tokens <= MAX_COUNT:
            raise UnsupportedRequest(
                f"max_tokens must be between 0 and {MAX_COUNT} (got {request.max_tokens})"
            )
        if request.n < 1:
            raise UnsupportedRequest(f"n must be >= 1 (got {request.n})")
        if not 0 <= request.temperature < math.inf:  # NaN and inf too
            raise UnsupportedRequest(f"temperature must be a finite number >= 0 (got {request.temperature})")
        if not 0 < request.top_p <= 1:
            raise UnsupportedRequest(f"top_p must be in (0, 1] (got {request.top_p})")
        if not -1 <= request.top_k <= MAX_COUNT:
            raise UnsupportedRequest(f"top_k must be -1 (off) or a positive number (got {request.top_k})")
        low, high = REPETITION_PENALTY_RANGE
        if not low <= request.repetition_penalty <= high:
            raise UnsupportedRequest(
                f"repetition_penalty must be between {low} and {high:g} (got {request.repetition_penalty})"
            )
        if request.seed is not None and not SEED_RANGE[0] <= request.seed <= SEED_RANGE[1]:
            raise UnsupportedRequest(f"seed must be a 64-bit integer (got {request.seed})")
        if request.top_logprobs < 0:
            raise UnsupportedRequest(f"top_logprobs must be >= 0 (got {request.top_logprobs})")
        if request.adapter is not None and request.adapter not in self.adapter_names():
            raise UnsupportedRequest(
                f"unknown adapter {request.adapter!r}; served: {', '.join(self.adapter_names()) or 'none'}"
            )
        if request.n > 1 and not caps.multiple_choices:
            raise UnsupportedRequest(f"this engine does not support n > 1 (got n={request.n})")
        if (request.logprobs or request.top_logprobs) and not caps.logprobs:
            raise UnsupportedRequest("this engine does not return logprobs")
        if request.top_logprobs > caps.max_top_logprobs:
            raise UnsupportedRequest(f"top_logprobs is at most {caps.max_top_logprobs} on this engine")
        if request.echo and request.logprobs and not caps.prompt_logprobs:
            raise UnsupportedRequest("this engine cannot return prompt logprobs (echo with logprobs)")
        if request.seed is not None and not caps.seed:
            raise UnsupportedRequest("this engine does not support a per-request seed")
        if request.repetition_penalty != 1.0 and not caps.repetition_penalty:
            raise UnsupportedRequest("this engine does not support repetition_penalty")
        if request.top_k not in (-1, 0) and not caps.top_k:
            raise UnsupportedRequest("this engine does not support top_k")
        if request.constraint is not None and request.constraint.kind not in caps.constraints:
            raise UnsupportedRequest(
                f"this engine cannot constrain its output to {request.constraint.kind} "
                f"(it enforces: {', '.join(sorted(caps.constraints)) or 'none'})"
            )

    @abstractmethod
    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        """The whole answer. Cancellation (asyncio.CancelledError) must stop the work."""

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamChunk]:
        """Increments of the answer; the default streams the whole answer as one chunk per choice."""
        response = await self.generate(request)
        for choice in response.choices:
            yield StreamChunk(
                choice.index,
                choice.text,
                choice.finish_reason,
                choice.logprobs,
                response.prompt_tokens,
                response.completion_tokens,
            )

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResponse]:
        """Synchronous convenience for batch inference: all requests submitted together."""

        async def run() -> list[GenerationResponse]:
            return list(await asyncio.gather(*(self.generate(r) for r in requests)))

        return asyncio.run(run())

    async def close(self) -> None:  # noqa: B027 - optional: engines without resources need nothing
        """Release the model; called when the server drains and exits."""
