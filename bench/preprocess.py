"""Preprocessing throughput: conversations -> input_ids + labels.

Same 20k synthetic conversations, same tokenizer (a tiny Qwen2.5-style one built on the spot):

* baseline: what a user writes by hand, a loop of `tokenizer.apply_chat_template(...)` per row
  (ids only: it does not even compute the label mask);
* swift: `encode_rows` (template segments, one batched tokenizer call per 512 rows, labels);
* swift, cached: the second run of the same job reads the content-hash cache.

    .venv/bin/python bench/preprocess.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def conversations(n: int, seed: int = 0) -> list[dict]:
    from swift_core.models.corpus import generate_corpus

    rng = random.Random(seed)
    corpus = generate_corpus(4000, seed=seed)
    rows = []
    for _ in range(n):
        turns = rng.randint(1, 3)
        messages = (
            [{"role": "system", "content": "You are a helpful assistant."}] if rng.random() < 0.3 else []
        )
        for _ in range(turns):
            messages.append({"role": "user", "content": " ".join(rng.sample(corpus, 2))})
            messages.append({"role": "assistant", "content": " ".join(rng.sample(corpus, rng.randint(1, 4)))})
        rows.append({"messages": messages})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    n = parser.parse_args().rows

    from transformers import AutoTokenizer

    from swift_core.datasets.cache import encode_rows_cached
    from swift_core.datasets.encode import encode_rows
    from swift_core.models.tiny import build_tiny_model
    from swift_core.templates.registry import get_template, official_jinja

    work = Path(tempfile.mkdtemp(prefix="swift-bench-"))
    os.environ["SWIFT_CACHE"] = str(work / "cache")
    model_dir = build_tiny_model(work / "tiny", model_type="qwen2", template="qwen2_5")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template = get_template("qwen2_5")
    if not tokenizer.chat_template:
        raise SystemExit(
            "the tiny tokenizer has no chat template; ship swift_core/templates/jinja/qwen2_5.jinja"
        )
    rows = conversations(n)
    assert official_jinja(template) == tokenizer.chat_template

    start = time.perf_counter()
    baseline_tokens = 0
    for row in rows:
        ids = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True)["input_ids"]
        baseline_tokens += len(ids)
    t_base = time.perf_counter() - start

    start = time.perf_counter()
    encoded = encode_rows(template, tokenizer, rows)
    t_swift = time.perf_counter() - start
    swift_tokens = sum(len(e) for e in encoded)

    encode_rows_cached(template, tokenizer, rows)  # fills the cache
    start = time.perf_counter()
    _, hit = encode_rows_cached(template, tokenizer, rows)
    t_cached = time.perf_counter() - start
    assert hit

    print(f"{n} conversations, {baseline_tokens} tokens (swift: {swift_tokens}, with labels)\n")
    print("| method | seconds | rows/s | vs baseline |\n|---|---|---|---|")
    for label, t in (
        ("loop of apply_chat_template (ids only)", t_base),
        ("swift encode_rows (ids + labels)", t_swift),
        ("swift, second run (cache hit)", t_cached),
    ):
        print(f"| {label} | {t:.2f} | {n / t:,.0f} | {t_base / t:.1f}x |")


if __name__ == "__main__":
    main()
