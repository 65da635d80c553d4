"""The scorer interface: one prediction against one row's reference, then an aggregate.

A scorer plugin registers a `ScorerDescriptor` whose factory is a `Scorer` subclass (or any callable
returning one, given the parsed arguments so that it can read its options). Per-row values are
kept in the predictions report so that a number can be traced back to the rows behind it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from swift_core.eval.rows import TaskRow


@dataclass
class RowScore:
    value: float
    extracted: str | None = None
    stats: Any = None


class Scorer(ABC):
    """Score predictions. `aggregate` defaults to the mean of the row values."""

    def __init__(self, args: Any = None):
        self.args = args

    @abstractmethod
    def score(self, prediction: str, row: TaskRow) -> RowScore:
        """How right `prediction` is for `row` (usually 0..1)."""

    def aggregate(self, scores: list[RowScore]) -> float:
        return sum(s.value for s in scores) / len(scores) if scores else 0.0


def references(row: TaskRow) -> list[str]:
    """The row's accepted answers as strings (a reference may be one string or a list)."""
    ref = row.reference
    if isinstance(ref, (list, tuple)):
        return [str(r) for r in ref]
    return [] if ref is None else [str(ref)]
