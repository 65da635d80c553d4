"""Stop strings and logprobs between LMDeploy's outputs and Swift's.

Stop strings are cut here rather than by LMDeploy: its `GenerationConfig.stop_words` match
*tokens whose text contains the word* (`Tokenizer.indexes_containing_token`, lmdeploy/tokenizer.py)
and drop that whole token, so a stop string spanning two tokens is missed and one inside a longer
token cuts too much. OpenAI's `stop` is a string match on the text: `StopCutter` does that, holding
back the few characters that could begin a stop string so that a stream never shows text the
final answer does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from swift_core.engines.protocol import TokenLogprob


class StopCutter:
    """Feed text increments; get what may be shown now, and whether a stop string was found."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.text = ""
        self.sent = 0  # characters of `text` already handed out
        self.stopped = False

    def feed(self, delta: str) -> str:
        """The text that can be shown after `delta`; once a stop string is found, `stopped` is set
        and the text ends just before it."""
        if self.stopped or not delta:
            return ""
        self.text += delta
        if self.stops:
            # Text already handed out holds no whole stop string (the hold-back guarantees it), so
            # a stop string can only start at `sent` or later.
            found = [i for i in (self.text.find(s, self.sent) for s in self.stops) if i >= 0]
            if found:
                end = min(found)
                out = self.text[self.sent : end]
                self.text = self.text[:end]
                self.sent = end
                self.stopped = True
                return out
        safe = len(self.text) - self.hold
        if safe <= self.sent:
            return ""
        out = self.text[self.sent : safe]
        self.sent = safe
        return out

    def flush(self) -> str:
        """The held-back tail, at the end of the answer."""
        out = self.text[self.sent :]
        self.sent = len(self.text)
        return out


def token_logprobs(
    token_ids: Sequence[int],
    entries: Sequence[dict[int, float]] | None,
    top_n: int,
    token_text: Callable[[int], str],
) -> list[TokenLogprob]:
    """LMDeploy's logprobs (one `{token_id: logprob}` per generated token: the top `logprobs`
    tokens and the chosen one, as lmdeploy/serve/openai/api_server.py reads them) as Swift's."""
    out = []
    for token_id, entry in zip(token_ids, entries or []):
        entry = entry or {}
        ranked = sorted(entry.items(), key=lambda kv: kv[1], reverse=True)[:top_n]
        chosen = entry.get(token_id)
        out.append(
            TokenLogprob(
                token_text(token_id),
                int(token_id),
                float(chosen) if chosen is not None else None,
                [(token_text(int(t)), float(lp)) for t, lp in ranked],
            )
        )
    return out
