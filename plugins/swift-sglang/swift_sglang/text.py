"""SGLang's output dicts as increments, and its logprob tuples as Swift's `TokenLogprob`s.

An output of `Engine.async_generate` is `{"text", "output_ids", "meta_info"}` with `meta_info`
holding `prompt_tokens`, `completion_tokens`, `finish_reason` (None, or a dict whose `type` is
"stop", "length" or "abort"), and, when logprobs were asked for, `output_token_logprobs` (one
`(logprob, token_id, text_or_None)` per token), `output_top_logprobs`, `input_token_logprobs`,
`input_top_logprobs` (python/sglang/srt/managers/tokenizer_manager.py).

How a stream carries them depends on the version and on `--incremental-streaming-output`: text is
the whole text so far (the default) or the new part; `output_ids` and the logprob lists are whole
or new. `completion_tokens` is always the count so far, so `ChunkReader` takes the *last* `new`
entries of every list (right in both cases) and follows the text in the mode the server runs.
While a stop string may still match, the last characters are held back: SGLang trims a matched
stop string from the final text, and a stream must not have shown them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from swift_core.engines.protocol import TokenLogprob


@dataclass
class Increment:
    """What one SGLang output adds to one choice."""

    text: str
    token_ids: list[int]
    logprobs: list[Any]  # (logprob, token_id, text) tuples of the new tokens
    top_logprobs: list[Any]  # per new token: a list of such tuples, or None
    completion_tokens: int
    finish: Any  # SGLang's finish_reason (None until the last output)
    meta: dict[str, Any]


def _tail(values: Any, count: int) -> list[Any]:
    if not values or count <= 0:
        return []
    return list(values[-count:])


class ChunkReader:
    """Successive outputs of one request (streamed or not) as increments."""

    def __init__(self, incremental_text: bool, stops: Sequence[str] = ()):
        self.incremental_text = incremental_text
        self.hold = max((len(s) for s in stops if s), default=1) - 1
        self.count = 0
        self.text = ""
        self.sent = 0

    def read(self, out: dict[str, Any]) -> Increment:
        meta = out.get("meta_info") or {}
        count = int(meta.get("completion_tokens", self.count) or 0)
        new = max(0, count - self.count)
        self.count = max(count, self.count)
        text = out.get("text")
        if text is not None:  # None: an intermediate output whose text SGLang did not build
            self.text = self.text + text if self.incremental_text else text
        finish = meta.get("finish_reason")
        end = len(self.text) if finish else max(self.sent, len(self.text) - self.hold)
        shown = self.text[self.sent : end]
        self.sent = max(self.sent, end)
        ids = out.get("output_ids")
        token_ids = [int(t) for t in _tail(ids, new)]
        logprobs = _tail(meta.get("output_token_logprobs"), new)
        if not token_ids and logprobs:  # versions without output_ids: the ids are in the logprobs
            token_ids = [int(entry[1]) for entry in logprobs]
        return Increment(
            shown, token_ids, logprobs, _tail(meta.get("output_top_logprobs"), new), count, finish, meta
        )


def finish_kind(finish: Any) -> str | None:
    """ "stop", "length", "abort", ... from SGLang's finish_reason (a dict; a string in old versions)."""
    if finish is None:
        return None
    if isinstance(finish, dict):
        return str(finish.get("type") or "")
    return str(finish)


def token_logprobs(
    entries: Sequence[Any],
    tops: Sequence[Any] | None,
    top_n: int,
    token_text: Callable[[int], str],
) -> list[TokenLogprob]:
    """SGLang's `(logprob, token_id, text)` tuples (and the top lists) as Swift's."""
    out = []
    tops = list(tops or [])
    for i, entry in enumerate(entries):
        logprob, token_id = entry[0], int(entry[1])
        top = tops[i] if i < len(tops) and tops[i] else []
        out.append(
            TokenLogprob(
                token_text(token_id),
                token_id,
                None if logprob is None else float(logprob),
                [(token_text(int(t[1])), float(t[0])) for t in list(top)[:top_n]],
            )
        )
    return out
