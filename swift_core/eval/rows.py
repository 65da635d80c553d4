"""What a scorer sees: one row of a task with its prediction.

The same type comes out of a predictions file (`swift_core.eval.predictions`) and out of a task file
answered by a model (`swift_core.eval.generate`), so every scorer works on both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class TaskRow:
    """A question: the chat messages asked, what a right answer is, and the choices if any.

    `reference` is a string, a list of accepted strings, or numbers (a box for IoU); for a
    multiple-choice row it is the right letter ("B"). `where` is "file, line N" for error messages.
    """

    id: str
    messages: list[dict[str, Any]]
    reference: Any
    choices: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    where: str = ""

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages if m.get("role") == "user")


@dataclass
class ScoredRow:
    """A task row, its prediction (None when generation failed: it scores 0) and its score."""

    row: TaskRow
    prediction: str | None
    value: float = 0.0
    extracted: str | None = None  # what the scorer compared (the letter, the number, ...)
    stats: Any = None  # corpus-level statistics a scorer aggregates (BLEU's n-gram counts)
    error: str | None = None
