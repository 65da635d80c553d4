"""Constrained decoding for the transformers engine: xgrammar compiles an `OutputConstraint` into
a grammar over the tokenizer's vocabulary, and one matcher per row of the batch masks the logits of
each step to the tokens the grammar allows (the same library vLLM uses for guided decoding).

Why xgrammar: it is maintained, it runs on the CPU, it compiles JSON Schema (strict, as OpenAI's
`json_schema` means), regular expressions and EBNF, and its per-step mask is a bitmask applied in
place, cheap next to a forward pass. JSON is generated without free whitespace
(`any_whitespace=False`): a grammar that allows any amount of it lets a weak model emit spaces until
max_tokens, so the answer would never close. Imported lazily: only a constrained request loads it.
"""

from __future__ import annotations

import threading
from typing import Any

from swift_core.engines.constraints import (
    CHOICE,
    GRAMMAR,
    JSON_OBJECT,
    JSON_SCHEMA,
    KINDS,
    REGEX,
    OutputConstraint,
    choice_grammar,
    hidden_special_ids,
    json_schema_grammar,
)
from swift_core.engines.protocol import UnsupportedRequest


def grammar_available() -> bool:
    """Whether xgrammar imports here (the `serve` extra installs it)."""
    try:
        import xgrammar  # noqa: F401
    except ImportError:
        return False
    return True


class GrammarBook:
    """Compiles constraints for one tokenizer (cached by xgrammar's compiler) and hands out matchers."""

    kinds = frozenset(KINDS)

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: list[int]):
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.stop_ids = list(stop_ids)
        self.hidden_ids = hidden_special_ids(tokenizer, self.stop_ids, vocab_size)  # never sampled
        self._compiler: Any = None
        self._lock = threading.Lock()  # the tokenize thread compiles, the worker thread matches

    def _compiler_once(self) -> Any:
        with self._lock:
            if self._compiler is None:
                import xgrammar as xgr

                info = xgr.TokenizerInfo.from_huggingface(
                    self.tokenizer, vocab_size=self.vocab_size, stop_token_ids=self.stop_ids or None
                )
                self._compiler = xgr.GrammarCompiler(info, cache_enabled=True)
            return self._compiler

    def compile(self, constraint: OutputConstraint) -> Any:
        """The compiled grammar; an invalid schema, regex or grammar is UnsupportedRequest (400)."""
        compiler = self._compiler_once()
        value = constraint.value
        try:
            if constraint.kind == JSON_OBJECT:
                return compiler.compile_builtin_json_grammar()
            if constraint.kind == JSON_SCHEMA:
                return compiler.compile_grammar(json_schema_grammar(value))
            if constraint.kind == REGEX:
                return compiler.compile_regex(value)
            if constraint.kind == CHOICE:
                return compiler.compile_grammar(choice_grammar(list(value)))
            if constraint.kind == GRAMMAR:
                return compiler.compile_grammar(value)
        except Exception as exc:  # xgrammar raises RuntimeError, ValueError or its own errors
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnsupportedRequest(
                f"the {constraint.kind} constraint cannot be compiled: {first}"
            ) from None
        raise UnsupportedRequest(f"unknown constraint kind {constraint.kind!r}")

    def matcher(self, compiled: Any) -> Any:
        import xgrammar as xgr

        return xgr.GrammarMatcher(compiled)


class RowMasks:
    """The per-step logits mask of the constrained rows of one batch (row index -> matcher)."""

    def __init__(self, matchers: dict[int, Any], batch: int, vocab_size: int, hidden_ids: list[int] = ()):
        import xgrammar as xgr

        self.hidden_ids = list(hidden_ids)
        self.matchers = matchers
        self.vocab_size = vocab_size
        self.bitmask = xgr.allocate_token_bitmask(batch, vocab_size)

    def apply(self, logits: Any, live: list[int]) -> Any:
        """`logits` with every token the grammar forbids at -inf, for the live constrained rows."""
        import torch
        import xgrammar as xgr

        rows = [i for i in live if i in self.matchers and not self.matchers[i].is_terminated()]
        if not rows:
            return logits
        for i in rows:
            self.matchers[i].fill_next_token_bitmask(self.bitmask, i)
        logits = logits.float() if logits.dtype != torch.float32 else logits.clone()  # the CPU kernel
        xgr.apply_token_bitmask_inplace(
            logits, self.bitmask.to(logits.device), vocab_size=self.vocab_size, indices=rows
        )
        if self.hidden_ids:
            index = torch.tensor(rows, device=logits.device)[:, None]
            logits[index, torch.tensor(self.hidden_ids, device=logits.device)[None, :]] = float("-inf")
        return logits

    def accept(self, row: int, token: int) -> bool:
        """Advance row's matcher by `token`; False when the grammar refuses it (never after a mask)."""
        matcher = self.matchers.get(row)
        if matcher is None or matcher.is_terminated():
            return True
        return bool(matcher.accept_token(token))
