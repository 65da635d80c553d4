"""OCR: character error rate, edits (insertions, deletions, substitutions) over reference length.

The aggregate is corpus CER (all edits over all reference characters), as OCR papers report it, not
the mean of per-row rates that short lines would dominate. Lower is better.
"""

from __future__ import annotations

from swift_core.eval.rows import TaskRow
from swift_core.eval.scorers.base import RowScore, Scorer, references


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


class CharErrorRate(Scorer):
    def score(self, prediction: str, row: TaskRow) -> RowScore:
        refs = references(row) or [""]
        best = min(refs, key=lambda r: edit_distance(prediction, r) / max(1, len(r)))
        edits = edit_distance(prediction, best)
        return RowScore(edits / max(1, len(best)), stats=(edits, len(best)))

    def aggregate(self, scores: list[RowScore]) -> float:
        edits = sum(s.stats[0] for s in scores)
        length = sum(s.stats[1] for s in scores)
        return edits / max(1, length)
