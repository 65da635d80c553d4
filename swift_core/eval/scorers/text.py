"""Text scorers: exact match, regular expressions, SQuAD-style token F1."""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass

from swift_core.config.arguments import arg
from swift_core.errors import SwiftError
from swift_core.eval.rows import TaskRow
from swift_core.eval.scorers.base import RowScore, Scorer, references


def _squish(text: str) -> str:
    return " ".join(text.split())


class ExactMatch(Scorer):
    """1 when the prediction equals a reference, ignoring surrounding and repeated whitespace.

    Case and punctuation count: "Yes." is not "yes" (use f1 or regex for looser matching)."""

    def score(self, prediction: str, row: TaskRow) -> RowScore:
        got = _squish(prediction)
        return RowScore(float(any(got == _squish(r) for r in references(row))), extracted=got)


@dataclass(kw_only=True)
class RegexOptions:
    regex_pattern: str | None = arg(
        None,
        help="regex scorer: the answer is this pattern's last match in the prediction (group 1 if it has "
        "groups), compared exactly with the reference; without it the reference is the pattern to find",
    )


class RegexMatch(Scorer):
    """With `--regex_pattern`: extract the answer from the prediction, then compare exactly.
    Without: each reference is a regular expression that must occur in the prediction."""

    def __init__(self, args=None):
        super().__init__(args)
        pattern = getattr(args, "regex_pattern", None) if args is not None else None
        try:
            self.pattern = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise SwiftError(f"--regex_pattern {pattern!r}: not a regular expression: {exc}") from None

    def score(self, prediction: str, row: TaskRow) -> RowScore:
        if self.pattern is None:
            for ref in references(row):
                try:
                    if re.search(ref, prediction):
                        return RowScore(1.0, extracted=ref)
                except re.error as exc:
                    raise SwiftError(
                        f"{row.where}, field 'reference': not a regular expression: {exc}"
                    ) from None
            return RowScore(0.0)
        matches = list(self.pattern.finditer(prediction))
        if not matches:
            return RowScore(0.0)
        last = matches[-1]
        got = (last.group(1) if self.pattern.groups else last.group(0)) or ""
        return RowScore(float(any(got.strip() == r.strip() for r in references(row))), extracted=got)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class TokenF1(Scorer):
    """Token-overlap F1 after SQuAD normalisation, the best over the references."""

    def score(self, prediction: str, row: TaskRow) -> RowScore:
        return RowScore(max((token_f1(prediction, r) for r in references(row)), default=0.0))
