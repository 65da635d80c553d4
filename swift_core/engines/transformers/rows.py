"""Per-row state of a batched `model.generate` call: sampling, detokenizing, stopping, streaming.

One `generate` call serves several requests (and n choices of each): every row of the batch has
its own sampling settings, stop strings, token budget and stream. Two hooks of transformers'
generation loop do the per-row work:

- `RowSampler` (a `LogitsProcessor`, the only one in the list) receives the raw logits of each
  step, keeps them for logprobs, masks constrained rows to what their grammar allows
  (`grammar.RowMasks`), and applies each row's repetition penalty, temperature, top-k
  and top-p (a greedy row among sampled ones keeps only its argmax). A row whose settings leave
  no distribution to sample (infinite or NaN logits) is failed alone (`Row.error`, `RowFailed`
  for its request) and given a harmless distribution, so that `torch.multinomial` cannot raise
  and fail the whole batch with it;
- `RowTracker` (a `StoppingCriteria`) receives each new token, detokenizes it incrementally,
  checks stop tokens, stop strings, the row's own max_tokens and its request's cancellation,
  emits stream increments, and returns which rows are finished (transformers pads those).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swift_core.engines.protocol import StreamChunk, TokenLogprob, UnsupportedRequest, is_greedy

CANCELLED = "cancelled"
FAILED = "failed"


class RowFailed(UnsupportedRequest):
    """A request whose sampling settings left its row nothing to sample (HTTP 400)."""


def stop_holdback(text: str, stops: list[str]) -> int:
    """How many characters at the end of `text` could be the start of a stop string."""
    keep = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), keep, -1):
            if text.endswith(stop[:k]):
                keep = k
                break
    return keep


@dataclass
class Row:
    """One choice of one request: what it generated so far and how it ended."""

    index: int  # the choice index within its request
    max_tokens: int
    stops: list[str]
    temperature: float
    top_p: float
    top_k: int
    repetition_penalty: float
    top_logprobs: int
    want_logprobs: bool
    emit: Callable[[StreamChunk], None] | None = None  # streaming: called from the worker thread
    is_cancelled: Callable[[], bool] = lambda: False
    prompt_tokens: int = 0
    ids: list[int] = field(default_factory=list)  # generated ids in the answer (no stop token)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    generated: int = 0  # tokens the model produced, the stop token included
    text: str = ""
    finish_reason: str | None = None
    error: str | None = None  # why this row failed (its request fails, the batch goes on)
    # incremental detokenization (the prefix/read offsets of vLLM's detokenizer)
    _prefix_offset: int = 0
    _read_offset: int = 0
    _sent_chars: int = 0
    _sent_logprobs: int = 0

    @property
    def greedy(self) -> bool:
        return is_greedy(self.temperature)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


class RowTracker:
    """The stopping criterion: per-row bookkeeping after each generated token."""

    def __init__(
        self,
        rows: list[Row],
        decode: Callable[[list[int]], str],
        token_text: Callable[[int], str],
        stop_ids: set[int],
        flush: Callable[[], None] = lambda: None,
        masks: Any = None,
    ):
        self.rows = rows
        self.masks = masks  # grammar.RowMasks of the constrained rows (None: none is)
        self.flush = flush  # hands the step's stream chunks over, once per step
        self.decode = decode
        self.token_text = token_text
        self.stop_ids = stop_ids
        self.raw_logits: Any = None  # set by RowSampler every step
        self.cancelled_rows = 0
        self.steps = 0

    # transformers calls a StoppingCriteria as criteria(input_ids, scores) -> BoolTensor[batch]
    def __call__(self, input_ids: Any, scores: Any = None, **kwargs: Any) -> Any:
        import torch

        self.steps += 1
        tokens = input_ids[:, -1].tolist()
        live = [i for i, r in enumerate(self.rows) if not r.done]
        wanted = [i for i in live if self.rows[i].want_logprobs]
        chosen: dict[int, TokenLogprob] = {}
        if wanted and self.raw_logits is not None:
            lp = torch.log_softmax(self.raw_logits[wanted].float(), dim=-1)
            k = max(self.rows[i].top_logprobs for i in wanted)
            top_v, top_i = lp.topk(k, dim=-1) if k else (None, None)
            for j, i in enumerate(wanted):
                token = tokens[i]
                top = []
                if k:
                    n = self.rows[i].top_logprobs
                    top = [
                        (self.token_text(t), float(v))
                        for t, v in zip(top_i[j, :n].tolist(), top_v[j, :n].tolist())
                    ]
                chosen[i] = TokenLogprob(self.token_text(token), token, float(lp[j, token]), top)
        for i in live:
            row = self.rows[i]
            if row.is_cancelled():
                row.finish_reason = CANCELLED
                self.cancelled_rows += 1
                continue
            if row.error is not None:
                row.finish_reason = FAILED  # nothing more is sent: its request fails
                continue
            if self.masks is not None and not self.masks.accept(i, tokens[i]):
                row.error = "the grammar refused the sampled token"  # a mask bug, never silent
                row.finish_reason = FAILED
                continue
            self._add(row, tokens[i], chosen.get(i))
        self.flush()
        return torch.tensor([r.done for r in self.rows], dtype=torch.bool, device=input_ids.device)

    def _add(self, row: Row, token: int, logprob: TokenLogprob | None) -> None:
        row.generated += 1
        if token in self.stop_ids:
            self._finish(row, "stop")
            return
        row.ids.append(token)
        if logprob is not None:
            row.logprobs.append(logprob)
        before = len(row.text)
        row.text += self._delta(row)
        if row.stops and len(row.text) > before:
            longest = max(len(s) for s in row.stops)
            start = max(0, before - longest + 1)
            hits = [(pos, s) for s in row.stops if (pos := row.text.find(s, start)) >= 0]
            if hits:
                row.text = row.text[: min(hits)[0]]
                self._finish(row, "stop", flush=False)
                return
        if row.generated >= row.max_tokens:
            self._finish(row, "length")
            return
        self._emit(row, final=False)

    def _delta(self, row: Row) -> str:
        """New text of the row, held back while the last token ends inside a UTF-8 character."""
        prefix = self.decode(row.ids[row._prefix_offset : row._read_offset])
        full = self.decode(row.ids[row._prefix_offset :])
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            row._prefix_offset, row._read_offset = row._read_offset, len(row.ids)
            return full[len(prefix) :]
        return ""

    def _finish(self, row: Row, reason: str, flush: bool = True) -> None:
        if flush:  # whatever the incremental decoder still holds (an incomplete character)
            prefix = self.decode(row.ids[row._prefix_offset : row._read_offset])
            full = self.decode(row.ids[row._prefix_offset :])
            row.text += full[len(prefix) :]
        row.finish_reason = reason
        self._emit(row, final=True)

    def finish_unfinished(self) -> None:
        """Rows still open when generate returned ran out of tokens (or of context)."""
        for row in self.rows:
            if not row.done:
                self._finish(row, "length")
        self.flush()

    def _emit(self, row: Row, final: bool) -> None:
        if row.emit is None:
            return
        end = len(row.text) if final else len(row.text) - stop_holdback(row.text, row.stops)
        if end <= row._sent_chars and not final:
            return
        text = row.text[row._sent_chars : end]
        lps = row.logprobs[row._sent_logprobs :] if row.want_logprobs else None
        row._sent_chars, row._sent_logprobs = end, len(row.logprobs)
        row.emit(
            StreamChunk(
                row.index,
                text,
                row.finish_reason if final else None,
                lps,
                row.prompt_tokens,
                row.generated,
            )
        )


class RowSampler:
    """The logits processor: raw logits kept for logprobs, then each row's own sampling settings."""

    def __init__(self, rows: list[Row], pad_lengths: list[int], tracker: RowTracker, sampling: bool):
        import torch

        self.masks = tracker.masks
        self.rows = rows
        self.pad_lengths = pad_lengths
        self.tracker = tracker
        self.sampling = sampling
        self.penalised = [i for i, r in enumerate(rows) if r.repetition_penalty != 1.0]
        self.temperature = torch.tensor([r.temperature if not r.greedy else 1.0 for r in rows])
        self.top_k = torch.tensor([r.top_k if r.top_k > 0 else 0 for r in rows])
        self.top_p = torch.tensor([r.top_p for r in rows])
        self.greedy = torch.tensor([r.greedy for r in rows])

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self.tracker.raw_logits = scores
        out = scores
        if self.penalised:
            out = out.clone()
            for i in self.penalised:
                penalty = self.rows[i].repetition_penalty
                seen = input_ids[i, self.pad_lengths[i] :]
                values = out[i].gather(0, seen)
                out[i].scatter_(0, seen, torch.where(values < 0, values * penalty, values / penalty))
        if self.masks is not None:  # structured outputs: what the grammar forbids is -inf
            out = self.masks.apply(out, [i for i, r in enumerate(self.rows) if not r.done])
        if not self.sampling:
            return out  # every row greedy: generate takes the argmax
        device = out.device
        out = out / self.temperature.to(device)[:, None]
        vocab = out.shape[-1]
        if bool((self.top_k > 0).any()):
            k = torch.where(self.top_k > 0, self.top_k.clamp(max=vocab), vocab).to(device)
            kth = out.sort(dim=-1, descending=True).values.gather(1, (k - 1)[:, None])
            out = out.masked_fill(out < kth, float("-inf"))
        if bool((self.top_p < 1.0).any()):
            sorted_logits, order = out.sort(dim=-1, descending=False)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative <= (1 - self.top_p.to(device))[:, None]
            remove[:, -1] = False  # always keep the most likely token
            out = out.masked_fill(remove.scatter(1, order, remove), float("-inf"))
        if bool(self.greedy.any()):
            best = out.argmax(dim=-1, keepdim=True)
            keep = torch.zeros_like(out, dtype=torch.bool).scatter_(1, best, True)
            greedy_rows = self.greedy.to(device)[:, None] & ~keep
            out = out.masked_fill(greedy_rows, float("-inf"))
        return self._fail_unsampleable(out, scores)

    def _fail_unsampleable(self, out: Any, raw: Any) -> Any:
        """Rows with NaN or +inf logits, or none finite, cannot be sampled: each is marked failed
        and sampled from its raw logits' argmax instead (the token is never used)."""
        import torch

        bad = torch.isnan(out).any(-1) | torch.isposinf(out).any(-1) | ~torch.isfinite(out).any(-1)
        if not bool(bad.any()):
            return out
        out = out.clone()
        for i in bad.nonzero().flatten().tolist():
            row = self.rows[i]
            if row.error is None:
                row.error = (
                    f"sampling failed: temperature={row.temperature}, top_p={row.top_p}, "
                    f"top_k={row.top_k}, repetition_penalty={row.repetition_penalty} leave no finite "
                    "distribution to sample from"
                )
            best = int(torch.nan_to_num(raw[i].float(), nan=-1.0).argmax())
            out[i] = float("-inf")
            out[i, best] = 0.0
        return out
