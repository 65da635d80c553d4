"""The `server` engine: the engine protocol over HTTP to a `swift deploy --enable_weight_updates` server.

GRPO's server mode (`swift rlhf --rollout_engine server --rollout_server_url http://HOST:PORT`):
the trainer and the rollout engine are separate processes (on GPUs, separate devices), as in
TRL's `vllm_mode="server"`. This engine sends each step's prompts as token ids to
`POST /v1/rollouts` (`swift_core.serve.rollouts`) and, because it has `update_weights`, the
rollout layer (`swift_core.rl.rollout.EngineRollout`) pushes the policy's merged weights to it
after every optimizer step: written as one safetensors file (atomically) to a folder the server
also reads, whose path goes to `POST /v1/weights`. So the server must see that disk (the same
machine, or a shared filesystem given as `--rollout_server_weights_dir`).

Plain `urllib`: the core takes no HTTP client dependency for a handful of JSON calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from swift_core.engines.protocol import (
    Choice,
    EngineCapabilities,
    EngineConfig,
    GenerationRequest,
    GenerationResponse,
    InferenceEngine,
    UnsupportedRequest,
)
from swift_core.engines.server.options import ServerEngineOptions
from swift_core.engines.weights import private_weights_folder
from swift_core.errors import SwiftError

API_KEY_ENV = "SWIFT_API_KEY"
WEIGHTS_FILE = "policy.safetensors"
DEPLOY_HINT = "swift deploy --model M --enable_weight_updates --port PORT"


class ServerRefused(SwiftError):
    """The rollout server answered with an error status (its message included)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ServerEngine(InferenceEngine):
    """Rollouts and weight updates by HTTP; the model itself lives in the server's process."""

    def __init__(self, config: EngineConfig, manager: Any = None):
        options = config.options if isinstance(config.options, ServerEngineOptions) else ServerEngineOptions()
        if not options.rollout_server_url:
            raise SwiftError(
                f"the server engine needs --rollout_server_url http://HOST:PORT of a running server ({DEPLOY_HINT})"
            )
        self.url = options.rollout_server_url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise SwiftError(f"--rollout_server_url {self.url}: give http://HOST:PORT")
        self.api_key = os.environ.get(API_KEY_ENV) or None  # not a flag: args.json records flags
        self.timeout = float(options.rollout_server_timeout)
        self.capabilities = EngineCapabilities(
            logprobs=True, streaming=False, multiple_choices=True, seed=True, top_k=True
        )
        self.weight_updates = 0
        try:
            info = self._call("GET", "/v1/weights")
        except ServerRefused as exc:
            if exc.status == 404:
                raise SwiftError(
                    f"the server at {self.url} takes no weight updates (no /v1/weights): start it with "
                    f"--enable_weight_updates ({DEPLOY_HINT})"
                ) from None
            raise
        self.model_name = str(info.get("model") or config.served_model_name or config.model)
        self.weights_version = int(info.get("version", 0))
        given = options.rollout_server_weights_dir
        self._own_folder = given is None
        self.folder = private_weights_folder("swift-rollout-weights-") if given is None else Path(given)
        self.folder.mkdir(parents=True, exist_ok=True)

    # -- HTTP ---------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            message = exc.reason
            with contextlib.suppress(ValueError, KeyError, TypeError):  # not our error JSON
                message = json.loads(exc.read())["error"]["message"]
            if exc.code == 401:
                message = f"{message} (set ${API_KEY_ENV} to the server's key in the trainer's environment)"
            raise ServerRefused(
                exc.code, f"rollout server {self.url}{path}: HTTP {exc.code}: {message}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SwiftError(
                f"cannot reach the rollout server at {self.url} ({reason}); is it running ({DEPLOY_HINT})?"
            ) from None

    # -- the engine protocol -------------------------------------------------------------------------

    def check_request(self, request: GenerationRequest) -> None:
        super().check_request(request)
        if not isinstance(request.prompt, list):
            raise UnsupportedRequest("the server engine sends prompts as token ids only (GRPO's rollouts)")
        if request.stop or request.echo or request.tools or request.images or request.constraint is not None:
            raise UnsupportedRequest(
                "the server engine samples token ids only: no stop strings, echo, tools, images or constraints"
            )

    def generate_batch(self, requests: list[GenerationRequest]) -> list[GenerationResponse]:
        """Requests sharing their sampling settings go as one POST (a GRPO step: one for all prompts)."""
        for r in requests:
            self.check_request(r)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(requests):
            key = (r.adapter, r.n, r.max_tokens, r.temperature, r.top_p, r.top_k, r.seed, r.logprobs)
            groups.setdefault(key, []).append(i)
        out: list[GenerationResponse | None] = [None] * len(requests)
        for indices in groups.values():
            first = requests[indices[0]]
            body = {
                "model": first.adapter or self.model_name,
                "prompts": [list(requests[i].prompt) for i in indices],  # type: ignore[arg-type]
                "n": first.n,
                "max_tokens": first.max_tokens,
                "temperature": first.temperature,
                "top_p": first.top_p,
                "top_k": first.top_k,
                "seed": first.seed,
                "repetition_penalty": first.repetition_penalty,
                "logprobs": first.logprobs,
            }
            answer = self._call("POST", "/v1/rollouts", body)
            results = answer.get("results", [])
            if len(results) != len(indices):
                raise SwiftError(
                    f"rollout server {self.url} answered {len(results)} prompts, not {len(indices)}"
                )
            for i, result in zip(indices, results, strict=True):
                out[i] = _response(result)
        return out  # type: ignore[return-value]

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        return (await asyncio.to_thread(self.generate_batch, [request]))[0]

    def update_weights(self, weights: Iterable[tuple[str, Any]]) -> dict[str, Any]:
        """Write the weights as one safetensors file in the shared folder and have the server load
        it; the server refuses names or shapes its model does not have (400, message kept)."""
        from swift_core.engines.weights import write_weights_file

        path = self.folder / WEIGHTS_FILE
        write_weights_file(weights, path)
        try:
            answer = self._call("POST", "/v1/weights", {"path": str(path.resolve())})
        except ServerRefused as exc:
            if exc.status == 404:
                raise SwiftError(
                    f"the server at {self.url} takes no weight updates: start it with --enable_weight_updates"
                ) from None
            raise
        self.weight_updates += 1
        self.weights_version = int(answer.get("version", self.weights_version + 1))
        return answer

    async def close(self) -> None:
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def _response(result: dict[str, Any]) -> GenerationResponse:
    from swift_core.engines.protocol import TokenLogprob

    choices = []
    for c in result.get("choices", []):
        ids = [int(t) for t in c.get("token_ids", [])]
        lps = c.get("logprobs")
        choices.append(
            Choice(
                index=int(c["index"]),
                text=str(c.get("text", "")),
                finish_reason=str(c.get("finish_reason", "length")),
                token_ids=ids,
                logprobs=None
                if lps is None
                else [
                    TokenLogprob(token="", token_id=t, logprob=lp) for t, lp in zip(ids, lps, strict=False)
                ],
            )
        )
    return GenerationResponse(
        choices=choices,
        prompt_tokens=int(result.get("prompt_tokens", 0)),
        completion_tokens=sum(len(c.token_ids) for c in choices),
    )
