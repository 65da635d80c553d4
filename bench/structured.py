"""Structured outputs' cost on the transformers engine: output tokens/s with and without a
json_schema constraint (xgrammar's per-row mask), in-process, same prompts and batch.

Each configuration answers the same `--requests` chat requests, all submitted together (one
dynamic batch of `--requests` rows), sampled at temperature 1 with a fixed seed, `--max_tokens`
each. The schema's string has no length bound and its object may repeat an array item, so the
constrained rows also run for many tokens (the comparison is per generated token, not per answer).
Also reported: the one-time grammar compile of the schema. Prints a markdown table.

    .venv/bin/python bench/structured.py [--size small] [--requests 16] [--max_tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
    },
    "required": ["title", "tags", "score"],
    "additionalProperties": False,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from swift_core.engines.constraints import JSON_SCHEMA, OutputConstraint
    from swift_core.engines.protocol import EngineConfig, GenerationRequest
    from swift_core.engines.transformers.engine import TransformersEngine
    from swift_core.models.tiny import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="bench-structured-"))
    model = build_tiny_model(work / "m", model_type="qwen2", template="qwen2_5", size=args.size)
    engine = TransformersEngine(EngineConfig(model=str(model), max_batch_size=args.requests))
    constraint = OutputConstraint(JSON_SCHEMA, SCHEMA)
    started = time.perf_counter()
    engine.grammars.compile(constraint)
    compile_s = time.perf_counter() - started

    def requests(constrained: bool) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                messages=[{"role": "user", "content": f"describe item {i} as JSON"}],
                max_tokens=args.max_tokens,
                temperature=1.0,
                seed=0,
                constraint=constraint if constrained else None,
            )
            for i in range(args.requests)
        ]

    async def run(constrained: bool) -> tuple[float, int]:
        batch = requests(constrained)
        start = time.perf_counter()
        answers = await asyncio.gather(*(engine.generate(r) for r in batch))
        return time.perf_counter() - start, sum(a.completion_tokens for a in answers)

    rows = []
    for constrained in (False, True, False, True) * ((args.repeats + 1) // 2):
        took, tokens = asyncio.run(run(constrained))
        rows.append((constrained, took, tokens))
    print(f"model {args.size}, {args.requests} requests in one batch, max_tokens {args.max_tokens}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; schema compile {compile_s * 1000:.1f} ms")  # fmt: skip
    print("\n| decoding | output tokens | seconds (median) | output tokens/s |")
    print("|---|---|---|---|")
    for constrained in (False, True):
        mine = sorted((t, n) for c, t, n in rows if c == constrained)
        took, tokens = mine[len(mine) // 2]
        label = "json_schema (xgrammar mask)" if constrained else "free"
        print(f"| {label} | {tokens} | {took:.2f} | {tokens / took:.0f} |")
    asyncio.run(engine.close())


if __name__ == "__main__":
    main()
