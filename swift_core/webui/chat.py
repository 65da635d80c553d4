"""The chat pane's model: one engine at a time, built on demand through the engine protocol.

The page chats with any complete checkpoint a job wrote (or any model folder). Building an
engine loads a model, so the service keeps the last one and rebuilds only when the page picks
another target; it goes through `swift infer`'s own arguments and `build_engine`, so the chat
renders prompts with the checkpoint's template exactly as `swift infer` would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError


class ChatService:
    def __init__(self, engine_name: str = "transformers", manager: Any = None):
        self.engine_name = engine_name
        self.manager = manager
        self._target: tuple[str, ...] | None = None
        self._engine: Any = None
        self._lock = asyncio.Lock()

    def _argv(self, target: str) -> list[str]:
        from swift_core.models.checkpoint import MARKER

        folder = Path(target)
        if (folder / MARKER).is_file():
            return ["--adapters", str(folder), "--engine", self.engine_name]
        return ["--model", target, "--engine", self.engine_name]

    async def engine(self, target: str) -> Any:
        key = (target, self.engine_name)
        async with self._lock:
            if self._target != key:
                if self._engine is not None:
                    await self._engine.close()
                    self._engine, self._target = None, None
                self._engine = await asyncio.to_thread(self._build, target)
                self._target = key
            return self._engine

    def _build(self, target: str) -> Any:
        from swift_core.config.arguments import parse_arguments
        from swift_core.config.options import with_capability_options
        from swift_core.infer.arguments import InferArguments, build_engine

        args = parse_arguments(with_capability_options(InferArguments, self.manager), self._argv(target))
        return build_engine(args, self.manager)

    async def stream(
        self, target: str, messages: list[dict[str, Any]], max_tokens: int, temperature: float
    ) -> AsyncIterator[str]:
        from swift_core.engines.protocol import GenerationRequest

        if not messages or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
            raise SwiftError("messages: give a list of {role, content}")
        engine = await self.engine(target)
        request = GenerationRequest(messages=messages, max_tokens=max_tokens, temperature=temperature)
        engine.check_request(request)
        async for chunk in engine.stream(request):
            if chunk.text:
                yield chunk.text

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()
            self._engine, self._target = None, None
