"""tool_choice "required" or a named function, enforced: the answer must be a call (to that
function) written in the template's own syntax, with arguments valid against the function's
parameter schema. Built as one xgrammar grammar (the call's fixed text around the parameters'
JSON Schema, one alternative per allowed function) and sent to the engine as a GRAMMAR constraint,
so every engine that enforces grammars enforces tool calls too.
"""

from __future__ import annotations

import json
from typing import Any

from swift_core.engines.constraints import GRAMMAR, OutputConstraint, grammar_text
from swift_core.engines.protocol import UnsupportedRequest
from swift_core.templates.tool_calls import ToolCallFormat


def tool_call_constraint(
    fmt: ToolCallFormat, tools: list[dict[str, Any]], name: str | None
) -> OutputConstraint:
    """The grammar of one call to any of `tools` (or to the one called `name`), in `fmt`'s syntax."""
    try:
        import xgrammar as xgr
    except ImportError:
        raise UnsupportedRequest(
            "tool_choice 'required' or a named function needs xgrammar installed"
        ) from None
    calls = []
    for tool in tools:
        function = tool.get("function", tool)
        if name is not None and function.get("name") != name:
            continue
        prefix, suffix = fmt.call_affixes(function["name"])
        params = function.get("parameters") or {"type": "object"}
        try:
            schema = xgr.Grammar.from_json_schema(json.dumps(params), any_whitespace=False, strict_mode=True)
        except Exception as exc:  # the client's schema
            raise UnsupportedRequest(
                f"the parameters of tool {function['name']!r} are not a usable JSON Schema: {exc}"
            ) from None
        calls.append(xgr.Grammar.concat(_literal(xgr, prefix), schema, _literal(xgr, suffix)))
    if not calls:
        raise UnsupportedRequest(f"tool_choice names {name!r}, which is not among the request's tools")
    return OutputConstraint(GRAMMAR, grammar_text(calls[0] if len(calls) == 1 else xgr.Grammar.union(*calls)))


def _literal(xgr: Any, text: str) -> Any:
    return xgr.Grammar.from_ebnf("root ::= " + json.dumps(text, ensure_ascii=False))
