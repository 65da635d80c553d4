"""Preference rows -> encoded chosen/rejected pairs (or KTO examples), checked with file and line."""

from __future__ import annotations

import copy
from typing import Any

from swift_core.datasets.encode import IGNORE_INDEX, EncodedRow, encode_rows
from swift_core.datasets.formats import RowError
from swift_core.errors import SwiftError


def paired_check(row: dict[str, Any]) -> None:
    if not row.get("rejected_response"):
        raise RowError(
            "rejected_response",
            "missing: a preference row needs a rejected answer (rejected, rejected_response or rejected_messages)",
        )


def unpaired_check(row: dict[str, Any]) -> None:
    if "label" not in row and not row.get("rejected_response"):
        raise RowError(
            "label", "KTO needs a desirable/undesirable label (true/false) or a chosen/rejected pair"
        )


def _only_last_trained(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Preference learning compares the final answers: earlier assistant turns are context."""
    messages = copy.deepcopy(messages)
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and i != last:
            m["loss"] = False
    return messages


def with_answer(messages: list[dict[str, Any]], answer: str) -> list[dict[str, Any]]:
    """The conversation with its final answer replaced (e.g. by the rejected one)."""
    return [*messages[:-1], {"role": "assistant", "content": answer}]


def unpaired_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """KTO rows; a chosen/rejected pair becomes one desirable and one undesirable row."""
    out = []
    for row in rows:
        if "label" in row:
            out.append({"messages": row["messages"], "tools": row.get("tools"), "label": bool(row["label"])})
        else:
            out.append({"messages": row["messages"], "tools": row.get("tools"), "label": True})
            out.append(
                {
                    "messages": with_answer(row["messages"], row["rejected_response"]),
                    "tools": row.get("tools"),
                    "label": False,
                }
            )
    return out


def _encode(template: Any, tokenizer: Any, rows: list[dict[str, Any]], args: Any) -> list[EncodedRow | None]:
    prepared = [
        {"messages": _only_last_trained(r["messages"]), **({"tools": r["tools"]} if r.get("tools") else {})}
        for r in rows
    ]
    return encode_rows(
        template, tokenizer, prepared, max_length=args.max_length, truncation=args.truncation_strategy
    )


def encode_pairs(
    template: Any, tokenizer: Any, rows: list[dict[str, Any]], args: Any
) -> list[dict[str, list[int]]]:
    chosen = _encode(template, tokenizer, rows, args)
    rejected = _encode(
        template,
        tokenizer,
        [{**r, "messages": with_answer(r["messages"], r["rejected_response"])} for r in rows],
        args,
    )
    pairs = [
        {
            "chosen_input_ids": c.input_ids,
            "chosen_labels": c.labels,
            "rejected_input_ids": r.input_ids,
            "rejected_labels": r.labels,
        }
        for c, r in zip(chosen, rejected)
        if c is not None
        and r is not None
        and any(x != IGNORE_INDEX for x in c.labels)
        and any(x != IGNORE_INDEX for x in r.labels)
    ]
    if not pairs:
        raise SwiftError(f"--max_length {args.max_length} is shorter than every preference pair; raise it")
    return pairs


def encode_unpaired(
    template: Any, tokenizer: Any, rows: list[dict[str, Any]], args: Any
) -> list[dict[str, Any]]:
    examples = unpaired_rows(rows)
    encoded = _encode(template, tokenizer, examples, args)
    out = [
        {"input_ids": e.input_ids, "labels": e.labels, "label": ex["label"]}
        for e, ex in zip(encoded, examples)
        if e is not None and any(x != IGNORE_INDEX for x in e.labels)
    ]
    if not out:
        raise SwiftError(f"--max_length {args.max_length} is shorter than every example; raise it")
    if len({x["label"] for x in out}) < 2:
        raise SwiftError("KTO needs both desirable and undesirable examples; every row has the same label")
    return out
