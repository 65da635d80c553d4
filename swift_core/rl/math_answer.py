"""Reading a final answer out of a completion and comparing answers as numbers.

No expression is ever evaluated (completions are untrusted text): an answer is a number in one of
the spellings models write (`42`, `-3.5`, `1,000`, `1/2`, `\\frac{1}{2}`, `50%`, `$12`), compared
as an exact fraction; anything else is compared as normalised text. Light: standard library only.
"""

from __future__ import annotations

import re
from fractions import Fraction

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?%?|-?\.\d+%?")
_FRAC = re.compile(r"\\d?frac\{\s*(-?\d+)\s*\}\{\s*(-?\d+)\s*\}")


def boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def final_answer(text: str) -> str:
    """What a completion answers: the last `<answer>` tag, else the last `\\boxed{}`, else all of it."""
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return tags[-1].strip()
    inside = boxed(text)
    return (inside if inside is not None else text).strip()


def normalise(text: str) -> str:
    return " ".join(text.strip().strip(".").casefold().split())


def as_number(text: str) -> Fraction | None:
    """The number `text` is (the whole answer, or its last number when it is a sentence)."""
    text = text.replace("$", "").replace("\\%", "%").replace("\\!", "").strip()
    frac = _FRAC.fullmatch(text) or (None if _NUMBER.fullmatch(text) else _last(_FRAC, text))
    if frac is not None:
        num, den = int(frac.group(1)), int(frac.group(2))
        return Fraction(num, den) if den else None
    match = _NUMBER.fullmatch(text) or _last(_NUMBER, text)
    if match is None:
        return None
    token = match.group(0).replace(",", "").replace(" ", "")
    percent = token.endswith("%")
    token = token.rstrip("%")
    try:
        if "/" in token:
            num, den = token.split("/")
            value = Fraction(int(num), int(den)) if int(den) else None
        else:
            value = Fraction(token)
    except (ValueError, ZeroDivisionError):
        return None
    if value is not None and percent:
        value /= 100
    return value


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


def equivalent(answer: str, solution: str) -> bool:
    """Whether a completion's final answer equals the solution: as numbers when both are numbers
    (a percentage also matches its fraction: 50% = 0.5), else as normalised text."""
    got, want = final_answer(answer), final_answer(solution)
    a, b = as_number(got), as_number(want)
    if a is not None and b is not None:
        if ("%" in got) != ("%" in want):  # one side wrote a percentage: 50% and 0.5, or 50 and 50%
            return a == b or a / 100 == b or a == b / 100
        return a == b
    return normalise(got) == normalise(want)
