"""Benchmarks by name: where each lives on the hub and how its rows read.

`--dataset mmlu` loads `cais/mmlu` from the hub; `--dataset mmlu:/data/mmlu` reads a local copy in
the same format (a file or a folder of jsonl/json/csv/parquet, e.g. a hub snapshot) without
touching the network. Each benchmark turns its raw rows into one shape, `{question, choices,
answer}` (choices only for multiple choice), which `swift_core.eval.tasks` renders as a prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swift_core.eval.rows import LETTERS

Raw = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    name: str
    hf_id: str
    subset: str | None
    split: str
    kind: str  # "multiple_choice" | "math" | "generation": picks the default scorer
    convert: Callable[[Raw], Raw]
    description: str = ""
    few_shot_split: str | None = None
    csv_header: bool = True  # False: the original headerless CSV files (MMLU's)


def _field(raw: Raw, *names: str) -> Any:
    for n in names:
        if n in raw and raw[n] is not None:
            return raw[n]
    raise KeyError(names[0])


def _mmlu(raw: Raw) -> Raw:
    if "question" not in raw and "0" in raw:  # the original CSV: question, A, B, C, D, answer
        return {"question": raw["0"], "choices": [raw[str(i)] for i in range(1, 5)], "answer": raw["5"]}
    return {
        "question": raw["question"],
        "choices": list(raw["choices"]),
        "answer": raw["answer"],
        "subject": raw.get("subject"),
    }


def _letters_abcd(raw: Raw) -> Raw:  # C-Eval, CMMLU: question, A, B, C, D, answer letter
    return {
        "question": _field(raw, "question", "Question"),
        "choices": [raw[c] for c in "ABCD"],
        "answer": _field(raw, "answer", "Answer"),
        "id": raw.get("id"),
    }


def _arc(raw: Raw) -> Raw:
    labels = list(raw["choices"]["label"])
    key = str(raw["answerKey"])
    return {
        "question": raw["question"],
        "choices": list(raw["choices"]["text"]),
        "answer": labels.index(key),
        "id": raw.get("id"),
    }


def _hellaswag(raw: Raw) -> Raw:
    context = raw.get("ctx") or f"{raw.get('ctx_a', '')} {raw.get('ctx_b', '')}".strip()
    return {
        "question": f"Which ending fits best?\n{raw.get('activity_label', '')}: {context}".strip(),
        "choices": list(raw["endings"]),
        "answer": int(raw["label"]),
        "id": raw.get("ind"),
    }


def _gsm8k(raw: Raw) -> Raw:
    return {"question": raw["question"], "answer": raw["answer"]}


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "mmlu",
            "cais/mmlu",
            "all",
            "test",
            "multiple_choice",
            _mmlu,
            "MMLU, 57 subjects",
            "dev",
            csv_header=False,
        ),
        Benchmark(
            "ceval",
            "ceval/ceval-exam",
            None,
            "val",
            "multiple_choice",
            _letters_abcd,
            "C-Eval (give a subject: ceval.SUBJECT)",
            "dev",
        ),
        Benchmark(
            "cmmlu",
            "haonan-li/cmmlu",
            None,
            "test",
            "multiple_choice",
            _letters_abcd,
            "CMMLU (give a subject: cmmlu.SUBJECT)",
            "dev",
        ),
        Benchmark(
            "arc",
            "allenai/ai2_arc",
            "ARC-Challenge",
            "test",
            "multiple_choice",
            _arc,
            "ARC-Challenge",
            "train",
        ),
        Benchmark(
            "arc_easy", "allenai/ai2_arc", "ARC-Easy", "test", "multiple_choice", _arc, "ARC-Easy", "train"
        ),
        Benchmark(
            "hellaswag",
            "Rowan/hellaswag",
            None,
            "validation",
            "multiple_choice",
            _hellaswag,
            "HellaSwag",
            "train",
        ),
        Benchmark(
            "gsm8k", "openai/gsm8k", "main", "test", "math", _gsm8k, "GSM8K grade-school math", "train"
        ),
    )
}

__all__ = ["BENCHMARKS", "LETTERS", "Benchmark"]
