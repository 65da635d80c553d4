"""Built-in evaluation scorers. Factories are strings: nothing (sympy, sacrebleu) loads until chosen."""

from __future__ import annotations

from swift_core.descriptors import ScorerDescriptor
from swift_core.hookspecs import hookimpl

_BASE = "swift_core.eval.scorers"


@hookimpl
def register_scorers(register):
    from swift_core.eval.scorers.text import RegexOptions

    for descriptor in (
        ScorerDescriptor(
            name="exact_match",
            aliases=("em", "acc"),
            description="The prediction equals a reference (whitespace ignored)",
            factory=f"{_BASE}.text:ExactMatch",
            default_for=("generation",),
        ),
        ScorerDescriptor(
            name="choice",
            aliases=("mc", "multiple_choice"),
            description="Multiple choice: the letter a free-text answer picked ('The answer is B.', '(D)')",
            factory=f"{_BASE}.choice:ChoiceLetter",
            default_for=("multiple_choice",),
        ),
        ScorerDescriptor(
            name="regex",
            description="A pattern extracts the answer (--regex_pattern), or the reference is a pattern to find",
            factory=f"{_BASE}.text:RegexMatch",
            options=RegexOptions,
        ),
        ScorerDescriptor(
            name="math",
            aliases=("numeric",),
            description="Final answer (####, \\boxed{}, 'answer is', last number) equal as a number or expression",
            factory=f"{_BASE}.math_answer:MathAnswer",
            default_for=("math",),
        ),
        ScorerDescriptor(
            name="f1",
            description="SQuAD token F1 after normalisation",
            factory=f"{_BASE}.text:TokenF1",
        ),
        ScorerDescriptor(
            name="rouge_l",
            aliases=("rouge",),
            description="ROUGE-L F-measure (rouge-score)",
            factory=f"{_BASE}.overlap:RougeL",
            requires=("rouge-score",),
        ),
        ScorerDescriptor(
            name="bleu",
            description="Corpus BLEU, 0-100 (sacrebleu)",
            factory=f"{_BASE}.overlap:Bleu",
            requires=("sacrebleu",),
        ),
        ScorerDescriptor(
            name="iou",
            description="Grounding: intersection over union of the predicted box [x1, y1, x2, y2]",
            factory=f"{_BASE}.grounding:BoxIoU",
            default_for=("grounding",),
        ),
        ScorerDescriptor(
            name="cer",
            description="OCR: character error rate over the corpus (lower is better)",
            factory=f"{_BASE}.ocr:CharErrorRate",
            higher_is_better=False,
            default_for=("ocr",),
        ),
    ):
        register(descriptor)
