"""Choosing a scorer plugin and scoring rows with it.

Without `--metric`, the scorer is the one whose descriptor declares the task's kind in
`default_for` (multiple choice -> letter extraction, math -> answer equivalence, otherwise exact
match): the registry decides, not a name written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swift_core.errors import SwiftError
from swift_core.eval.rows import ScoredRow
from swift_core.eval.scorers.base import RowScore, Scorer


@dataclass
class Score:
    metric: str
    value: float
    higher_is_better: bool
    n: int
    failed: int
    groups: dict[str, float] = field(default_factory=dict)  # per meta task/subject, when rows say


def scorer_descriptor(manager: Any, kind: str, metric: str | None) -> Any:
    registry = manager.registries["scorers"]
    if metric:
        return manager.get("scorers", metric)
    for wanted in (kind, "generation"):
        found = [d for d in registry if wanted in d.default_for]
        if len(found) > 1:
            raise SwiftError(
                f"several scorers are the default for {wanted!r} tasks ({', '.join(d.name for d in found)}); "
                "choose one with --metric"
            )
        if found:
            return found[0]
    raise SwiftError(
        f"no scorer is the default for {kind!r} tasks; choose one with --metric ({', '.join(registry.names())})"
    )


def build_scorer(descriptor: Any, args: Any) -> Scorer:
    scorer = descriptor.load()(args)
    if not isinstance(scorer, Scorer):
        raise SwiftError(
            f"scorer {descriptor.name!r} from plugin {descriptor.plugin!r} did not build a Scorer (got {type(scorer).__name__})"
        )
    return scorer


def score_rows(scorer: Scorer, descriptor: Any, rows: list[ScoredRow]) -> Score:
    """Score every row in place (a failed generation is scored as an empty answer) and aggregate."""
    results: list[RowScore] = []
    for r in rows:
        result = scorer.score(r.prediction if r.prediction is not None else "", r.row)
        r.value, r.extracted, r.stats = float(result.value), result.extracted, result.stats
        results.append(result)
    groups: dict[str, list[RowScore]] = {}
    for r, result in zip(rows, results):
        label = r.row.meta.get("task") or r.row.meta.get("subject")
        if label is not None:
            groups.setdefault(str(label), []).append(result)
    return Score(
        metric=descriptor.name,
        value=float(scorer.aggregate(results)),
        higher_is_better=descriptor.higher_is_better,
        n=len(rows),
        failed=sum(1 for r in rows if r.prediction is None),
        groups={k: float(scorer.aggregate(v)) for k, v in sorted(groups.items())} if len(groups) > 1 else {},
    )
