"""Synthetic instruction tasks whose held-out prompts test generalisation, not memory.

* repeat: "Repeat the word: tiger" -> "tiger" (held-out words never appear in training);
* last: "What is the last word of: red cat sun?" -> "sun";
* sum: "What is 3 plus 4?" -> "7" (single digits; some pairs held out).
"""

from __future__ import annotations

import random
from typing import Any

from swift_core.models.corpus import ADJECTIVES, NOUNS

TASKS = ("repeat", "last", "sum")


def _word_split(seed: int) -> tuple[list[str], list[str]]:
    words = sorted(set(NOUNS) | set(ADJECTIVES))
    rng = random.Random(seed)
    rng.shuffle(words)
    cut = int(len(words) * 0.8)
    return words[:cut], words[cut:]


def _pairs_split(seed: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    pairs = [(a, b) for a in range(10) for b in range(10)]
    rng = random.Random(seed + 1)
    rng.shuffle(pairs)
    return pairs[:80], pairs[80:]


def make_example(
    task: str, rng: random.Random, words: list[str], pairs: list[tuple[int, int]]
) -> dict[str, Any]:
    if task == "repeat":
        w = rng.choice(words)
        q, a = f"Repeat the word: {w}", w
    elif task == "last":
        ws = rng.sample(words, rng.randint(2, 4))
        q, a = f"What is the last word of: {' '.join(ws)}?", ws[-1]
    else:
        x, y = rng.choice(pairs)
        q, a = f"What is {x} plus {y}?", str(x + y)
    return {"task": task, "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def make_split(n_train: int, n_eval: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training rows from the training words/pairs, held-out rows from the others."""
    train_words, held_words = _word_split(seed)
    train_pairs, held_pairs = _pairs_split(seed)
    rng = random.Random(seed + 2)
    train = [make_example(TASKS[i % 3], rng, train_words, train_pairs) for i in range(n_train)]
    held = [make_example(TASKS[i % 3], rng, held_words, held_pairs) for i in range(n_eval)]
    return train, held


def accuracy(rows: list[dict[str, Any]], answers: list[str]) -> dict[str, float]:
    per: dict[str, list[bool]] = {}
    for row, answer in zip(rows, answers):
        per.setdefault(row["task"], []).append(answer.strip() == row["messages"][-1]["content"])
    result = {task: sum(v) / len(v) for task, v in per.items()}
    result["all"] = sum(sum(v) for v in per.values()) / max(1, sum(len(v) for v in per.values()))
    return result


def skill_sentence(rng: random.Random) -> str:
    """Plain-text statements of the three skills, over every word and digit pair.

    Pretraining on these gives the base model the skills; fine-tuning then teaches it to use them
    when asked in a chat, which it cannot do before (the demo's "before" column).
    """
    words = sorted(set(NOUNS) | set(ADJECTIVES))
    kind = rng.randrange(3)
    if kind == 0:
        w = rng.choice(words)
        return f"The word {w} repeated is {w}."
    if kind == 1:
        ws = rng.sample(words, rng.randint(2, 4))
        return f"In the list {' '.join(ws)} the last word is {ws[-1]}."
    x, y = rng.randrange(10), rng.randrange(10)
    return f"{x} plus {y} makes {x + y}."


def pretraining_corpus(n: int, seed: int = 0) -> list[str]:
    """Half general sentences, half skill statements."""
    from swift_core.models.corpus import generate_corpus

    rng = random.Random(seed)
    general = generate_corpus(n // 2, seed=seed)
    return general + [skill_sentence(rng) for _ in range(n - len(general))]
