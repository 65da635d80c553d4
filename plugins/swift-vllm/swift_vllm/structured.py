"""Swift's `OutputConstraint` as vLLM's structured-output parameters (guided decoding).

A JSON Schema goes to vLLM as the EBNF the transformers engine compiles
(`swift_core.engines.constraints.json_schema_grammar`, xgrammar's with compact whitespace and JSON's
string characters), so one schema means the same answers on both engines; the other kinds map one
to one onto `StructuredOutputsParams`' fields.
"""

from __future__ import annotations

from typing import Any

from swift_core.engines.constraints import (
    CHOICE,
    GRAMMAR,
    JSON_OBJECT,
    JSON_SCHEMA,
    REGEX,
    OutputConstraint,
    json_schema_grammar,
)
from swift_core.engines.protocol import UnsupportedRequest


def structured_outputs(constraint: OutputConstraint | None) -> Any:
    """vLLM's StructuredOutputsParams for `constraint` (None: free text)."""
    if constraint is None:
        return None
    from vllm.sampling_params import StructuredOutputsParams

    kind, value = constraint.kind, constraint.value
    if kind == JSON_OBJECT:
        return StructuredOutputsParams(json_object=True, disable_any_whitespace=True)
    if kind == JSON_SCHEMA:
        try:
            grammar = json_schema_grammar(value)
        except Exception as exc:  # xgrammar's errors: the schema is the client's
            raise UnsupportedRequest(f"the json_schema constraint cannot be compiled: {exc}") from None
        return StructuredOutputsParams(grammar=grammar)
    if kind == REGEX:
        return StructuredOutputsParams(regex=value)
    if kind == CHOICE:
        return StructuredOutputsParams(choice=list(value))
    if kind == GRAMMAR:
        return StructuredOutputsParams(grammar=value)
    raise UnsupportedRequest(f"unknown constraint kind {kind!r}")
