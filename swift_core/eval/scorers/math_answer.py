"""Numeric and math answers: extract the final answer, then compare as numbers or expressions.

The final answer is, in order: what follows GSM8K's `####`, the last `\\boxed{...}`, what follows
"answer is"/"answer:", else the last number in the text. "1,000", "$1000", "1000.0" and "1e3" are
equal; "1/2" equals "0.5"; an answer of one word ("x^2") is taken whole; expressions ("2*x + x", "3x") are compared with sympy when both parse.
"""

from __future__ import annotations

import re
from fractions import Fraction

from swift_core.eval.rows import TaskRow
from swift_core.eval.scorers.base import RowScore, Scorer, references

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?%?|-?\$?\.\d+%?")


def _boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def final_answer(text: str, last_number: bool = True) -> str:
    """The answer a solution ends with (see the module docstring for the order). A reference is
    read with `last_number=False`: "2*x + x" is an answer, not a text whose last number is 2."""
    if "####" in text:
        return text.rsplit("####", 1)[1].strip()
    boxed = _boxed(text)
    if boxed is not None:
        return boxed.strip()
    said = re.search(r"answer\s*(?:is|:)\s*(.+?)(?:\.\s|\.?$|\n)", text, flags=re.IGNORECASE)
    if said:
        return said.group(1).strip()
    if not text.strip() or len(text.split()) == 1:  # one token ("x^2", "$1,000"): the answer itself
        return text.strip()
    numbers = _NUMBER.findall(text) if last_number else []
    return numbers[-1] if numbers else text.strip()


def as_number(text: str) -> Fraction | None:
    t = text.strip().rstrip(".").replace(",", "").replace("$", "").replace(" ", "")
    percent = t.endswith("%")
    t = t.rstrip("%")
    m = re.fullmatch(r"(-?\d+)/(\d+)", t)
    try:
        value = Fraction(int(m.group(1)), int(m.group(2))) if m else Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def _sympy_equal(a: str, b: str) -> bool:
    try:
        import sympy
        from sympy.parsing.sympy_parser import (
            implicit_multiplication_application,
            parse_expr,
            standard_transformations,
        )

        transformations = (*standard_transformations, implicit_multiplication_application)
        left = parse_expr(a.replace("^", "**"), transformations=transformations, evaluate=True)
        right = parse_expr(b.replace("^", "**"), transformations=transformations, evaluate=True)
        return bool(sympy.simplify(left - right) == 0)
    except Exception:  # anything that does not parse is simply not equal
        return False


def answers_equal(predicted: str, reference: str) -> bool:
    if predicted.strip() == reference.strip():
        return True
    a, b = as_number(predicted), as_number(reference)
    if a is not None and b is not None:
        return a == b
    if a is not None or b is not None:
        return False
    return _sympy_equal(predicted, reference)


class MathAnswer(Scorer):
    """1 when the prediction's final answer equals the reference's (references may be whole solutions)."""

    def score(self, prediction: str, row: TaskRow) -> RowScore:
        got = final_answer(prediction)
        ok = any(answers_equal(got, final_answer(r, last_number=False)) for r in references(row))
        return RowScore(float(ok), extracted=got)
