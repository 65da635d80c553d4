"""What a request may constrain its output to (structured outputs), engine-neutral.

The server turns OpenAI's `response_format` (json_object, json_schema) and vLLM's extensions
(`guided_json`, `guided_regex`, `guided_choice`, `guided_grammar`) into one `OutputConstraint`;
each engine compiles it with its own grammar backend (xgrammar on the transformers engine, vLLM's
structured outputs on vLLM). An engine lists the kinds it can enforce in
`EngineCapabilities.constraints`; any other kind is refused (HTTP 400), never ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON_OBJECT = "json_object"  # any JSON object
JSON_SCHEMA = "json_schema"  # a JSON document valid against `value` (a JSON Schema dict)
REGEX = "regex"  # text matching `value` (a regular expression), whole
CHOICE = "choice"  # exactly one of `value` (a list of strings)
GRAMMAR = "grammar"  # text of `value` (an EBNF/GBNF grammar)
KINDS = (JSON_OBJECT, JSON_SCHEMA, REGEX, CHOICE, GRAMMAR)


@dataclass(frozen=True)
class OutputConstraint:
    """The output must be text of `kind` (with its `value`); `key` identifies it for caches."""

    kind: str
    value: Any = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{json.dumps(self.value, sort_keys=True, ensure_ascii=False)}"


def choice_grammar(choices: list[str]) -> str:
    """An EBNF grammar whose only sentences are `choices` (a JSON string literal is a valid EBNF
    string literal: the same escapes)."""
    return "root ::= " + " | ".join(json.dumps(c, ensure_ascii=False) for c in choices)


# xgrammar 0.2.8 writes a string with minLength/maxLength as a run of this character class, which
# lets raw control characters (U+0000-U+001F but CR/LF) into the string: not JSON, and a JSON parser
# (pydantic's, the openai SDK's) refuses the answer. Its unbounded strings use the right class.
_BOUNDED_STRING_CHAR = r"[^\"\\\r\n]"
_JSON_STRING_CHAR = r"[^\0-\x1f\"\\]"


def json_schema_grammar(schema: Any) -> str:
    """xgrammar's EBNF of a JSON Schema (strict: no properties beyond those listed; compact
    whitespace), its bounded strings restricted to characters JSON allows unescaped. Shared by the
    engines that decode with xgrammar (transformers; vLLM, as a grammar), so both mean the same."""
    import xgrammar as xgr

    text = schema if isinstance(schema, str) else json.dumps(schema)
    return grammar_text(xgr.Grammar.from_json_schema(text, any_whitespace=False, strict_mode=True))


def grammar_text(grammar: Any) -> str:
    """An xgrammar Grammar as EBNF text, JSON strings of bounded length fixed (see above)."""
    return str(grammar).replace(_BOUNDED_STRING_CHAR, _JSON_STRING_CHAR)


def hidden_special_ids(tokenizer: Any, stop_ids: list[int], vocab_size: int | None = None) -> list[int]:
    """Special tokens other than the stops (and the tokenizer's eos). An engine's decoding drops
    them from the answer's text, so a grammar that lets one stand for its text (the tiny test
    models' `<tool_call>`) would let through an answer that does not match it: engines keep
    constrained rows from sampling them."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    special = {i for i, t in added.items() if getattr(t, "special", False)}
    special |= set(getattr(tokenizer, "all_special_ids", []) or [])
    keep = set(stop_ids) | {getattr(tokenizer, "eos_token_id", None)}
    return sorted(i for i in special - keep if i >= 0 and (vocab_size is None or i < vocab_size))
