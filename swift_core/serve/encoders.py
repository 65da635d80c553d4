"""Engine results in OpenAI's shapes, for what `openai_api.py` does not build per request.

The chunk encoders hold the state of one streamed answer (token counts for the final usage,
which choices have had their prompt echoed), so that the SSE loop in `streaming.py` is the same
for both routes and each encoder can be tested by feeding it chunks, without HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from swift_core.engines.protocol import GenerationRequest, GenerationResponse, StreamChunk
from swift_core.serve import openai_api as api
from swift_core.templates.tool_calls import ToolCallFormat


def completion_response(
    rid: str, model: str, gens: list[GenerationRequest], responses: list[GenerationResponse]
) -> dict[str, Any]:
    """The /v1/completions body: one engine request per prompt, choices numbered prompt-major."""
    choices = []
    for p, (gen, response) in enumerate(zip(gens, responses)):
        for c in response.choices:
            choices.append(api.completion_choice(p * gen.n + c.index, c, response, gen))
    return {
        "id": rid,
        "object": "text_completion",
        "created": api.now(),
        "model": model,
        "choices": choices,
        "usage": api.usage(
            sum(r.prompt_tokens for r in responses), sum(r.completion_tokens for r in responses)
        ),
        "system_fingerprint": None,
    }


class ChatChunks:
    """The `chat.completion.chunk` bodies of one streamed chat answer with `n` choices."""

    def __init__(
        self,
        rid: str,
        created: int,
        model: str,
        n: int,
        include_usage: bool,
        tool_format: ToolCallFormat | None = None,
    ) -> None:
        self.rid, self.created, self.model, self.n = rid, created, model, n
        self.include_usage = include_usage
        self.prompt_tokens = 0
        self.completion = [0] * n
        # With tools: each choice's text goes through the template's tool-call parser, which turns
        # its calls into delta.tool_calls (and the finish into "tool_calls").
        self.tools = [tool_format.streamer() for _ in range(n)] if tool_format is not None else None

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return api.chat_chunk(self.rid, self.created, self.model, choices, self.include_usage)

    def opening(self) -> Iterator[dict[str, Any]]:
        """The assistant role of every choice, as OpenAI sends it before any content."""
        yield self._chunk(
            [
                {
                    "index": i,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
                for i in range(self.n)
            ]
        )

    def events(self, stream_index: int, chunk: StreamChunk) -> Iterator[dict[str, Any]]:
        """The content delta of `chunk` (if any), then its finish (if it is the choice's last)."""
        self.prompt_tokens = chunk.prompt_tokens
        self.completion[chunk.index] = max(self.completion[chunk.index], chunk.completion_tokens)
        finish = chunk.finish_reason
        if self.tools is not None:
            yield from self._tool_events(chunk)
            if finish is not None and self.tools[chunk.index].calls:
                finish = "tool_calls"
        elif chunk.text or chunk.logprobs:
            delta = {
                "index": chunk.index,
                "delta": {"content": chunk.text},
                "logprobs": api.chat_logprobs(chunk.logprobs),
                "finish_reason": None,
            }
            yield self._chunk([delta])
        if finish is not None:
            end = {"index": chunk.index, "delta": {}, "logprobs": None, "finish_reason": finish}
            yield self._chunk([end])

    def _tool_events(self, chunk: StreamChunk) -> Iterator[dict[str, Any]]:
        """Content and tool-call deltas of one chunk's text, as the choice's parser reads them."""
        parser = self.tools[chunk.index]  # type: ignore[index]
        pieces = parser.feed(chunk.text) if chunk.text else []
        if chunk.finish_reason is not None:
            pieces += parser.finish()
        logprobs = api.chat_logprobs(chunk.logprobs)
        for piece in pieces:
            if piece.index is None:
                delta: dict[str, Any] = {"content": piece.content}
            else:
                call: dict[str, Any] = {"index": piece.index, "function": {"arguments": piece.arguments}}
                if piece.call_id is not None:
                    call.update(id=piece.call_id, type="function")
                    call["function"]["name"] = piece.name
                delta = {"tool_calls": [call]}
            yield self._chunk(
                [{"index": chunk.index, "delta": delta, "logprobs": logprobs, "finish_reason": None}]
            )
            logprobs = None

    def closing(self) -> Iterator[dict[str, Any]]:
        """With `stream_options.include_usage`: a last chunk without choices that carries the usage."""
        if self.include_usage:
            final = api.chat_chunk(self.rid, self.created, self.model, [], False)
            final["usage"] = api.usage(self.prompt_tokens, sum(self.completion))
            yield final


class CompletionChunks:
    """The `text_completion` bodies of one streamed /v1/completions answer over several prompts.

    Stream `p` is the engine request of prompt `p`; its choice `i` is answered as index
    `p * n + i`, as in the non-streamed body.
    """

    def __init__(
        self, rid: str, created: int, model: str, gens: list[GenerationRequest], include_usage: bool
    ) -> None:
        self.rid, self.created, self.model, self.gens = rid, created, model, gens
        self.include_usage = include_usage
        self.prompt_tokens = [0] * len(gens)
        self.completion: dict[tuple[int, int], int] = {}
        self.echoed: set[tuple[int, int]] = set()

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.rid,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "system_fingerprint": None,
        }
        if self.include_usage:
            body["usage"] = None
        return body

    def _echo(self, p: int, index: int) -> str | None:
        """The prompt text to put before a choice's first text when `echo` is on, else None.

        A prompt given as token ids echoes as '' (streamed echo is text-only).
        """
        gen = self.gens[p]
        if not gen.echo or (p, index) in self.echoed:
            return None
        self.echoed.add((p, index))
        return gen.prompt if isinstance(gen.prompt, str) else ""

    def opening(self) -> Iterator[dict[str, Any]]:
        """Nothing: completions have no role chunk."""
        yield from ()

    def events(self, stream_index: int, chunk: StreamChunk) -> Iterator[dict[str, Any]]:
        """One chunk with `chunk`'s text, logprobs and finish, unless it carries none of them."""
        p, gen = stream_index, self.gens[stream_index]
        self.prompt_tokens[p] = chunk.prompt_tokens
        self.completion[(p, chunk.index)] = chunk.completion_tokens
        text = chunk.text
        echo = self._echo(p, chunk.index)
        if echo is not None:
            text = echo + text
        logprobs = api.legacy_logprobs(chunk.logprobs, 0) if gen.logprobs and chunk.logprobs else None
        if text or logprobs or chunk.finish_reason:
            choice = {
                "index": p * gen.n + chunk.index,
                "text": text,
                "logprobs": logprobs,
                "finish_reason": chunk.finish_reason,
            }
            yield self._chunk([choice])

    def closing(self) -> Iterator[dict[str, Any]]:
        """With `stream_options.include_usage`: a last chunk without choices that carries the usage."""
        if self.include_usage:
            final = self._chunk([])
            final["usage"] = api.usage(sum(self.prompt_tokens), sum(self.completion.values()))
            yield final
