"""A reward model behind `swift deploy`: the `InferenceEngine` whose only answer is a score.

`swift rlhf --rlhf_type rm` checkpoints score (prompt, answer) conversations; `swift infer` scores
rows of a file with `infer.score.RewardScorer`. This wraps the same scorer (same loader, template,
padding, batching), so POST /v1/score gives the scores `swift infer` writes, and refuses
generation with a 400 that points to the score route.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from swift_core.engines.protocol import (
    EngineCapabilities,
    EngineConfig,
    GenerationRequest,
    GenerationResponse,
    InferenceEngine,
    UnsupportedRequest,
)
from swift_core.engines.served_names import served_names


class RewardEngine(InferenceEngine):
    """`config.model` (a reward checkpoint) scoring conversations in a worker thread."""

    def __init__(self, config: EngineConfig, manager: Any = None) -> None:
        from swift_core.infer.score import RewardScorer

        self.scorer = RewardScorer(config, manager)
        self.capabilities = EngineCapabilities(streaming=False, scores=True)
        self.model_name, *aliases = served_names(str(config.model), config.served_model_name, None)
        self.model_aliases = tuple(aliases)
        self.max_model_len = self.scorer.max_length
        self.template = self.scorer.template
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swift-score")

    async def generate(self, request: GenerationRequest) -> GenerationResponse:
        raise UnsupportedRequest(
            f"{self.model_name} is a reward model: it scores answers instead of writing them (POST /v1/score)"
        )

    async def score(self, conversations: list[dict[str, Any]]) -> list[tuple[float | None, str | None]]:
        """(score, error) of each conversation ({"messages": [...], "tools": [...]?}), final answer
        included; a conversation longer than the context is an error, the others are scored."""
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._executor, self.scorer.score_rows, conversations)
        return [(r.score, r.error) for r in rows]

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
