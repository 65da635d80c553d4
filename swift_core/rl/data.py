"""Prompt rows of online RL: a conversation to answer and the columns reward functions read.

Any SFT row format loads (messages, query/response, alpaca, ...). The prompt is the conversation up
to its last user turn; a final assistant turn, when there is one, is the reference answer and
becomes the `solution` column unless the row has one. Every column a selected reward function
reads (`required_columns`: `solution` for accuracy and math) must be present: a row without it is
reported with its file, line and field while loading, before any model loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swift_core.datasets.formats import RowError
from swift_core.errors import SwiftError

# Fields the row formats read (swift_core.datasets.formats): the conversation, not columns.
FORMAT_FIELDS = frozenset(
    [
        "messages",
        "conversations",
        "query",
        "response",
        "instruction",
        "input",
        "output",
        "prompt",
        "completion",
        "system",
        "history",
        "tools",
        "images",
        "image",
        "objects",
        "chosen",
        "rejected",
        "rejected_response",
        "rejected_messages",
        "label",
        "text",
    ]
)


def prompt_check(needed: dict[str, list[str]]) -> Callable[[dict[str, Any]], None]:
    """The per-row check (and conversion) `load_rows` runs on every converted row."""

    def check(row: dict[str, Any]) -> None:
        messages = row["messages"]
        columns = {k: v for k, v in row.get("columns", {}).items() if k not in FORMAT_FIELDS}
        row["columns"] = columns
        if messages and messages[-1]["role"] == "assistant":
            answer = messages.pop()
            if columns.get("solution") is None:
                columns["solution"] = answer["content"]
        if not messages or messages[-1]["role"] != "user":
            raise RowError("messages", "online RL needs a prompt that ends with a user turn")
        for column, readers in needed.items():
            if columns.get(column) is None:
                raise RowError(
                    column,
                    f"missing: the reward function {', '.join(readers)} reads the row's {column!r} column",
                )

    return check


def encode_prompts(
    rows: list[dict[str, Any]], template: Any, tokenizer: Any, max_length: int | None
) -> list[dict[str, Any]]:
    """Rows with `prompt_ids` (the template's rendering, generation prompt included); prompts
    longer than `max_length` are dropped, and none left is an error."""
    from swift_core.datasets.encode import encode_prompt

    out = []
    for row in rows:
        ids = encode_prompt(template, tokenizer, row["messages"], tools=row.get("tools") or None)
        if max_length and len(ids) > max_length:
            continue
        out.append({"prompt_ids": list(ids), "messages": row["messages"], "columns": row["columns"]})
    if not out:
        raise SwiftError(f"--max_length {max_length} is shorter than every prompt; raise it")
    return out
