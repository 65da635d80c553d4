"""The work of `bench/train_realistic.py`: a ~25M-parameter Qwen2 and 1,200 chat rows of lognormal length.

Kept apart from the bench so the tests of packing and length-grouped batching can train on the
same shape of data (many short rows, a long tail) without running the bench.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

# hidden 512, 8 layers, GQA 8/2 heads, MLP 1536, vocabulary 4,000: ~26M parameters (tied embeddings).
BENCH_CONFIG = {
    "hidden_size": 512,
    "intermediate_size": 1536,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
}
VOCAB = 4000


def build_model(out: Path, seed: int = 0) -> Path:
    """A Qwen2 folder (random weights, a BPE tokenizer trained on the spot) both frameworks load."""
    from swift_core.models import tiny

    if (out / "config.json").exists():
        return out
    size = "bench_realistic"
    tiny.SIZES[size] = BENCH_CONFIG
    try:
        return tiny.build_tiny_model(out, "qwen2", size=size, vocab_size=VOCAB, seed=seed)
    finally:
        tiny.SIZES.pop(size, None)


def lognormal_lengths(n: int, mean: float, cap: int, rng: random.Random, sigma: float = 0.75) -> list[int]:
    """Token targets: lognormal with the given mean (sigma 0.75 gives a long tail), at most `cap`."""
    mu = math.log(mean) - sigma**2 / 2
    return [max(24, min(cap, int(rng.lognormvariate(mu, sigma)))) for _ in range(n)]


def write_rows(
    path: Path, tokenizer_dir: Path, n: int = 1200, mean: int = 250, cap: int = 950, seed: int = 0
) -> Path:
    """`n` chat rows whose rendered length (in the model's tokens) follows the lognormal targets.

    A fifth of each row is the question, the rest the answer; text comes from the synthetic corpus.
    """
    from transformers import AutoTokenizer

    from swift_core.models.corpus import generate_corpus

    if path.exists():
        return path
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rng = random.Random(seed)
    sentences = generate_corpus(4000, seed=seed + 1)
    per_sentence = sum(len(tok(s)["input_ids"]) for s in sentences[:200]) / 200

    def text(tokens: int) -> str:
        k = max(1, round(tokens / per_sentence))
        return " ".join(rng.choice(sentences) for _ in range(k))

    rows = []
    # Sentences joined in a row tokenize ~12% longer than alone (measured): aim that much lower.
    for target in lognormal_lengths(n, mean / 1.12, int(cap / 1.12), rng):
        body = max(8, target - 12)  # the chat markup takes about a dozen tokens
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": text(max(4, body // 5))},
                    {"role": "assistant", "content": text(max(4, body - body // 5))},
                ]
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
