"""Overlap metrics of free text: ROUGE-L (Google's rouge-score) and BLEU (sacrebleu, corpus-level).

Both libraries are what papers report with, so these numbers compare with published ones; they are
optional requirements (the `eval` extra): the descriptors name them, and choosing the scorer
without them says what to install.
"""

from __future__ import annotations

from swift_core.eval.rows import TaskRow
from swift_core.eval.scorers.base import RowScore, Scorer, references


class RougeL(Scorer):
    """ROUGE-L F-measure (longest common subsequence), the best over the references, averaged."""

    def __init__(self, args=None):
        super().__init__(args)
        from rouge_score import rouge_scorer

        self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

    def score(self, prediction: str, row: TaskRow) -> RowScore:
        best = max(
            (self._scorer.score(r, prediction)["rougeL"].fmeasure for r in references(row)), default=0.0
        )
        return RowScore(best)


class Bleu(Scorer):
    """Corpus BLEU (sacrebleu's defaults: 13a tokenizer, 4-grams), on a 0-100 scale as sacrebleu
    reports it; a row's own value is its sentence BLEU."""

    def __init__(self, args=None):
        super().__init__(args)
        import sacrebleu

        self._sacrebleu = sacrebleu

    def score(self, prediction: str, row: TaskRow) -> RowScore:
        refs = references(row)
        value = self._sacrebleu.sentence_bleu(prediction, refs).score if refs else 0.0
        return RowScore(value, stats=(prediction, refs))

    def aggregate(self, scores: list[RowScore]) -> float:
        if not scores:
            return 0.0
        hyps = [s.stats[0] for s in scores]
        width = max(len(s.stats[1]) for s in scores)
        # sacrebleu takes one stream per reference position; rows with fewer references repeat their last
        streams = [
            [s.stats[1][min(k, len(s.stats[1]) - 1)] if s.stats[1] else "" for s in scores]
            for k in range(width)
        ]
        return float(self._sacrebleu.corpus_bleu(hyps, streams).score)
