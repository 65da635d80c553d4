"""The built-in scorers of `swift eval` against values computed by hand (in the comments)."""

from __future__ import annotations

import math

import pytest

from swift_core.eval.rows import ScoredRow, TaskRow
from swift_core.eval.scorers.choice import extract_letter
from swift_core.eval.scorers.math_answer import final_answer
from swift_core.eval.scoring import build_scorer, score_rows
from swift_core.testing import builtin_manager


def _row(reference, choices=None, i=0):
    return TaskRow(
        str(i), [{"role": "user", "content": "q"}], reference, choices, {}, f"t.jsonl, line {i + 1}"
    )


def _score(metric, pairs, args=None, choices=None):
    """(aggregate, per-row values) of `metric` over (prediction, reference) pairs."""
    manager = builtin_manager()
    descriptor = manager.get("scorers", metric)
    scorer = build_scorer(descriptor, args)
    rows = [ScoredRow(_row(ref, choices, i), pred) for i, (pred, ref) in enumerate(pairs)]
    result = score_rows(scorer, descriptor, rows)
    return result.value, [r.value for r in rows]


def test_every_builtin_scorer_is_registered():
    names = set(builtin_manager().registries["scorers"].names())
    assert {"exact_match", "choice", "regex", "math", "f1", "rouge_l", "bleu", "iou", "cer"} <= names


def test_exact_match_ignores_only_whitespace():
    value, rows = _score(
        "exact_match", [(" yes ", "yes"), ("Yes.", "yes"), ("two  words", "two words"), ("b", ["a", "b"])]
    )
    assert rows == [1.0, 0.0, 1.0, 1.0] and value == 0.75


@pytest.mark.parametrize(
    "text, letter",
    [
        ("The answer is B.", "B"),
        ("(D)", "D"),
        ("answer: a", "A"),
        ("B. Paris", "B"),
        ("C", "C"),
        ("I think it is (c) because", "C"),
        ("a cat sat", None),  # a lone lower-case "a" is an article, not a choice
        ("Paris", "B"),  # the text of a choice
        ("E", None),  # beyond the four choices
    ],
)
def test_choice_letter_extraction(text, letter):
    assert extract_letter(text, 4, ["London", "Paris", "Rome", "Oslo"]) == letter


def test_choice_scores_letters_indexes_and_choice_texts():
    choices = ["x", "y", "z", "w"]
    value, rows = _score(
        "choice", [("The answer is B.", "B"), ("(D)", 3), ("answer: a", "C"), ("z", "C")], choices=choices
    )
    assert rows == [1.0, 1.0, 0.0, 1.0] and value == 0.75


def test_regex_with_a_pattern_and_with_the_reference_as_pattern():
    class Args:
        regex_pattern = r"#### (\d+)"

    value, rows = _score("regex", [("so #### 12 then #### 42", "42"), ("#### 7", "8"), ("none", "1")], Args())
    assert rows == [1.0, 0.0, 0.0]  # the last match counts
    value, rows = _score("regex", [("it is 2026-12-01", r"\d{4}-\d\d-\d\d"), ("no date", r"\d{4}")])
    assert rows == [1.0, 0.0] and value == 0.5


def test_math_final_answers_and_equivalence():
    assert final_answer("3 + 4 = 7 apples.\n#### 7") == "7"
    assert final_answer("so \\boxed{\\frac{1}{2}} wins") == "\\frac{1}{2}"
    assert final_answer("We get 12, then 30 in total") == "30"
    pairs = [
        ("#### 1,000", "1000"),
        ("The answer is $1000.00.", "1000"),
        ("\\boxed{1/2}", "0.5"),
        ("50%", "0.5"),
        ("the answer is 3x", "2*x + x"),  # sympy: equal expressions
        ("42", "Tom has 6 * 7 = 42.\n#### 43"),  # the reference's final answer is 43
        ("x^2", "x*x"),
    ]
    value, rows = _score("math", pairs)
    assert rows == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]


def test_token_f1():
    # "the cat sat" -> [cat, sat]; "cat sat down" -> [cat, sat, down]: P = 1, R = 2/3, F1 = 0.8
    value, rows = _score("f1", [("the cat sat", "cat sat down"), ("dog", "cat")])
    assert rows[0] == pytest.approx(0.8) and rows[1] == 0.0 and value == pytest.approx(0.4)


def test_rouge_l():
    # LCS of "a b c d" and "a c d e" is "a c d": P = R = 3/4, F = 0.75
    value, _ = _score("rouge_l", [("a b c d", "a c d e")])
    assert value == pytest.approx(0.75)


def test_bleu_is_corpus_level():
    # hypothesis "the cat sat on the mat", reference "the cat sat on a mat": clipped n-gram
    # precisions 5/6, 3/5, 2/4, 1/3, equal lengths (no brevity penalty): (1/12)^(1/4) = 53.73
    one = [("the cat sat on the mat", "the cat sat on a mat")]
    value, _ = _score("bleu", one)
    assert value == pytest.approx(100 * (1 / 12) ** 0.25, abs=0.01)
    # with an exact 4-word copy the corpus counts are 9/10, 6/8, 4/6, 2/4: 68.87, not the mean 76.9
    value, rows = _score("bleu", [("a b c d", "a b c d"), *one])
    assert value == pytest.approx(100 * (0.9 * 0.75 * (4 / 6) * 0.5) ** 0.25, abs=0.01)
    assert rows[0] == pytest.approx(100)


def test_iou():
    # [0,0,10,10] and [5,5,15,15]: intersection 25, union 175 -> 1/7
    value, rows = _score(
        "iou",
        [
            ("<box>(5,5),(15,15)</box>", [0, 0, 10, 10]),
            ("[0, 0, 10, 10]", "[0,0,10,10]"),
            ("none", [0, 0, 1, 1]),
        ],
    )
    assert rows == pytest.approx([1 / 7, 1.0, 0.0])


def test_cer_is_corpus_level_and_lower_is_better():
    # "helo"/"hello": 1 edit of 5; "abc"/"abd": 1 of 3 -> corpus 2/8 = 0.25 (the mean would be 0.267)
    value, rows = _score("cer", [("helo", "hello"), ("abc", "abd")])
    assert rows == pytest.approx([0.2, 1 / 3]) and value == pytest.approx(0.25)
    assert builtin_manager().get("scorers", "cer").higher_is_better is False


def test_default_scorer_follows_the_task_kind():
    from swift_core.eval.scoring import scorer_descriptor

    manager = builtin_manager()
    assert scorer_descriptor(manager, "multiple_choice", None).name == "choice"
    assert scorer_descriptor(manager, "math", None).name == "math"
    assert scorer_descriptor(manager, "something-new", None).name == "exact_match"
    assert scorer_descriptor(manager, "math", "f1").name == "f1"
    assert not math.isnan(_score("exact_match", [("a", "a")])[0])
