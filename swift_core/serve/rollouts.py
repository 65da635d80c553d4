"""Server mode for online RL: rollouts as token ids and new weights, behind `--enable_weight_updates`.

TRL's `vllm_mode="server"` and ms-swift's external rollout split the trainer and the engine into
two processes (on GPUs: separate devices). This adds the two routes that split needs to the
OpenAI app, only when `swift deploy --enable_weight_updates` is given (off by default: a client
could replace the served weights; with `--api_key` both routes need the key, like every /v1 route):

- `POST /v1/rollouts`: prompts as token ids, `n` sampled completions each, answered as token ids
  with their finish reason (the OpenAI routes answer text, which a trainer would have to
  re-tokenize, not always to the same ids); sampling values are checked as /v1/completions checks
  them.
- `POST /v1/weights` `{"path": FILE}`: a safetensors file of (name, tensor) in Hugging Face names
  on a disk the server reads, handed to the engine's `update_weights` (501 for an engine without
  one, 400 when the names or shapes do not fit the served model). `GET /v1/weights`: how many
  updates the server took (`version`), for a client to check the routes are there.

The weights cross as a file path, so trainer and server must share a disk (the same machine, or
a shared filesystem); NCCL broadcast between devices is not built.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from swift_core.engines.protocol import GenerationRequest
from swift_core.errors import SwiftError
from swift_core.serve import openai_api as api
from swift_core.serve.errors import OpenAIRoute, engine_error
from swift_core.serve.openai_api import OpenAIError
from swift_core.serve.routes import CLIENT_CLOSED, OpenAIServer
from swift_core.serve.streaming import ClientGone, watch


class RolloutRequest(api._Sampling):
    """`model` (the served model or an adapter), `prompts` (token ids), OpenAI's sampling fields."""

    prompts: list[list[int]] = Field(min_length=1)
    max_tokens: int | None = 16
    logprobs: bool | None = False


class WeightsRequest(api._Strict):
    path: str = Field(min_length=1)


class RolloutServer:
    """The handlers of /v1/rollouts and /v1/weights over the OpenAI server's engine."""

    def __init__(self, server: OpenAIServer) -> None:
        self.server = server
        self.version = 0  # weight updates taken since the server started
        self._lock = asyncio.Lock()  # one update at a time

    async def rollouts(self, request: Request) -> Response:
        server = self.server
        req = api.parse_body(RolloutRequest, await server.body(request))
        adapter = server.adapter_for(req.model)
        values = api._sampling(
            req, req.max_tokens, server.settings.default_max_tokens, server.settings.limits
        )
        gens = [
            GenerationRequest(prompt=list(p), adapter=adapter, logprobs=bool(req.logprobs), **values)
            for p in req.prompts
        ]
        try:
            responses = await watch(request, asyncio.gather(*(server.engine.generate(g) for g in gens)))
        except ClientGone:
            return Response(status_code=CLIENT_CLOSED)
        except OpenAIError:
            raise
        except Exception as exc:
            raise engine_error(exc) from None
        server.count(sum(r.prompt_tokens for r in responses), sum(r.completion_tokens for r in responses))
        results = []
        for response in responses:
            choices = []
            for c in sorted(response.choices, key=lambda c: c.index):
                choice: dict[str, Any] = {
                    "index": c.index,
                    "token_ids": list(c.token_ids),
                    "text": c.text,
                    "finish_reason": c.finish_reason,
                }
                if req.logprobs:
                    choice["logprobs"] = [t.logprob for t in (c.logprobs or [])]
                choices.append(choice)
            results.append({"choices": choices, "prompt_tokens": response.prompt_tokens})
        return JSONResponse(
            {
                "object": "rollouts",
                "created": api.now(),
                "model": req.model,
                "weights_version": self.version,
                "results": results,
            }
        )

    async def weights_version(self) -> dict[str, Any]:
        return {"object": "weights", "version": self.version, "model": self.server.settings.served_model_name}

    async def update_weights(self, request: Request) -> dict[str, Any]:
        from swift_core.engines.weights import read_weights_file

        req = api.parse_body(WeightsRequest, await self.server.body(request))
        engine = self.server.engine
        update = getattr(engine, "update_weights", None)
        if not callable(update):
            raise OpenAIError(
                501,
                f"the engine serving this model ({type(engine).__name__}) cannot take new weights in place "
                "(it has no update_weights); serve it with an engine that can (transformers, vllm)",
                type="server_error",
                code="not_implemented",
            )
        start = time.perf_counter()
        async with self._lock:
            try:
                weights = await asyncio.to_thread(read_weights_file, req.path)
                await asyncio.to_thread(update, weights)
            except SwiftError as exc:
                raise OpenAIError(
                    400, f"weights refused: {exc}", param="path", code="weights_refused"
                ) from None
            except Exception as exc:
                raise engine_error(exc) from None
            self.version += 1
        return {
            "object": "weights",
            "version": self.version,
            "tensors": len(weights),
            "seconds": round(time.perf_counter() - start, 4),
        }


def rollout_router(server: OpenAIServer) -> APIRouter:
    """/v1/rollouts and /v1/weights, behind the API key check like every /v1 route."""
    rollouts = RolloutServer(server)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(server.check_key)], route_class=OpenAIRoute)
    v1.add_api_route("/rollouts", rollouts.rollouts, methods=["POST"])
    v1.add_api_route("/weights", rollouts.update_weights, methods=["POST"])
    v1.add_api_route("/weights", rollouts.weights_version, methods=["GET"])
    return v1
