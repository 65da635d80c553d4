"""Multiple choice: find the letter a free-text answer picked ("The answer is B.", "(D)", "answer: a").

Generation-based multiple choice lives or dies by this extraction: a model that says "B. Paris" or
"I think (b)" picked B. Patterns are tried from the most explicit ("answer is X") to the loosest (a
lone letter first); a prediction that equals one choice's text picks that choice.
"""

from __future__ import annotations

import re

from swift_core.eval.rows import LETTERS, TaskRow
from swift_core.eval.scorers.base import RowScore, Scorer


def extract_letter(prediction: str, n_choices: int, choices: list[str] | None = None) -> str | None:
    """The letter picked, among the first `n_choices` letters, or None."""
    letters = LETTERS[: max(1, n_choices)]
    cls = f"[{letters}{letters.lower()}]"
    text = prediction.strip()
    upper = f"[{letters}]"
    # Lower-case letters only where the wording makes them a choice: a lone "a" is an article.
    patterns = (
        rf"answer\s*(?:is|:)?\s*[:\s]*\(?({cls})\)?(?![A-Za-z])",  # "the answer is B", "answer: a"
        rf"\(({cls})\)",  # "(D)", "(b)"
        rf"^({upper})(?:[.):,]|\s|$)",  # "B. Paris", "C"
        rf"(?<![A-Za-z])({upper})(?:[.)]|$)",  # "... so C." at the end
    )
    for pattern in patterns:
        found = re.search(pattern, text, flags=re.IGNORECASE if pattern.startswith("answer") else 0)
        if found:
            return found.group(1).upper()
    if choices:
        folded = text.rstrip(".").strip().casefold()
        for letter, choice in zip(letters, choices):
            if folded == str(choice).strip().casefold():
                return letter
    return None


def reference_letter(row: TaskRow) -> str:
    ref = row.reference
    if isinstance(ref, int) and not isinstance(ref, bool):
        return LETTERS[ref]
    text = str(ref).strip()
    if row.choices and text not in LETTERS:
        for letter, choice in zip(LETTERS, row.choices):
            if text == str(choice).strip():
                return letter
    return text.upper()


class ChoiceLetter(Scorer):
    """Accuracy of the extracted letter against the reference letter (or index, or choice text)."""

    def score(self, prediction: str, row: TaskRow) -> RowScore:
        n = len(row.choices) if row.choices else 26
        got = extract_letter(prediction, n, row.choices)
        return RowScore(float(got is not None and got == reference_letter(row)), extracted=got)
