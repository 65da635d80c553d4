"""Synthetic instruction tasks: held-out prompts are new combinations, never seen in fine-tuning.

Over lists of colour and animal words:

* count:  "How many words are in: red cat blue?"               -> "3"
* animal: "Is there an animal in: red cat blue?"               -> "yes"
* kind:   "Is the first word a colour or an animal: red cat?"  -> "colour"

The model must learn to read the list, not a lookup table: the held-out lists are combinations the
fine-tuning data does not contain. (Copying a word out of the list is beyond what a model this
small learns in a few minutes on a CPU; these three are within reach.)
"""

from __future__ import annotations

import random
from typing import Any

COLOURS = ("red", "blue", "green", "yellow", "white", "black")
ANIMALS = ("cat", "dog", "fish", "bird", "horse", "mouse")
WORDS = COLOURS + ANIMALS
TASKS = ("count", "animal", "kind")


def _question(task: str, words: list[str]) -> tuple[str, str]:
    listed = " ".join(words)
    if task == "count":
        return f"How many words are in: {listed}?", str(len(words))
    if task == "animal":
        return f"Is there an animal in: {listed}?", "yes" if any(w in ANIMALS for w in words) else "no"
    return f"Is the first word a colour or an animal: {listed}?", "animal" if words[
        0
    ] in ANIMALS else "colour"


def _words(rng: random.Random) -> tuple[str, ...]:
    """2-5 words; a third of the lists have colours only, so 'no' answers are common too."""
    pool = COLOURS if rng.random() < 0.35 else WORDS
    return tuple(rng.choice(pool) for _ in range(rng.randint(2, 5)))


def make_split(n_train: int, n_eval: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training rows and held-out rows whose word lists never occur in the training rows."""
    rng = random.Random(seed)
    seen: set[tuple[str, ...]] = set()
    held: list[dict[str, Any]] = []
    while len(held) < n_eval:
        words = _words(rng)
        if words in seen:
            continue
        seen.add(words)
        q, a = _question(TASKS[len(held) % 3], list(words))
        held.append(
            {
                "task": TASKS[len(held) % 3],
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            }
        )
    train: list[dict[str, Any]] = []
    while len(train) < n_train:
        words = _words(rng)
        if words in seen:
            continue
        task = TASKS[len(train) % 3]
        q, a = _question(task, list(words))
        train.append(
            {"task": task, "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        )
    return train, held


def accuracy(rows: list[dict[str, Any]], answers: list[str]) -> dict[str, float]:
    per: dict[str, list[bool]] = {}
    for row, answer in zip(rows, answers):
        per.setdefault(row["task"], []).append(answer.strip() == row["messages"][-1]["content"])
    result = {task: sum(v) / len(v) for task, v in per.items()}
    result["all"] = sum(sum(v) for v in per.values()) / max(1, sum(len(v) for v in per.values()))
    return result


def pretraining_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """General text for `swift pt`: half plain documents, half two-turn chats of such sentences.

    The chats teach the base model the chat format and its special tokens (as a real base model
    has seen them); the tasks themselves are not in it.
    """
    from swift_core.models.corpus import generate_corpus

    sentences = generate_corpus(2 * n, seed=seed)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        a, b = sentences[2 * i], sentences[2 * i + 1]
        if rng.random() < 0.5:
            rows.append({"text": f"{a} {b}"})
        else:
            rows.append({"messages": [{"role": "user", "content": a}, {"role": "assistant", "content": b}]})
    return rows


def wrong_answer(row: dict[str, Any], rng: random.Random) -> str:
    """A plausible wrong answer to a task row (the rejected side of a preference pair)."""
    answer = row["messages"][-1]["content"]
    if row["task"] == "count":
        return str(int(answer) + rng.choice((-1, 1)))
    if row["task"] == "animal":
        return "no" if answer == "yes" else "yes"
    return "colour" if answer == "animal" else "animal"


def _balanced(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Equal numbers of each answer per task, so that no answer is right more often than another:
    a model that only learned which answers are common stays at 50% reward accuracy."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["task"], r["messages"][-1]["content"]), []).append(r)
    out = []
    for task in TASKS:
        groups = [g for (t, _), g in by.items() if t == task]
        if task == "count":
            out += [r for g in groups for r in g]
            continue
        n = min(len(g) for g in groups)
        out += [r for g in groups for r in g[:n]]
    return out


def preference_split(
    n_train: int, n_eval: int, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tasks as preference pairs: the right answer chosen, a wrong one rejected; yes/no and
    colour/animal balanced, count answers rejected one too high or one too low at random."""
    rng = random.Random(seed + 5)
    train, held = make_split(n_train, n_eval, seed)

    def pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"messages": r["messages"], "rejected_response": wrong_answer(r, rng)} for r in _balanced(rows)
        ]

    return pairs(train), pairs(held)
