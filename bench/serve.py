"""Serving speed: `swift deploy` (transformers engine) under concurrent OpenAI clients.

A small model (Qwen2 architecture, random weights, built on the spot in a temporary folder) is
served by `swift deploy` in its own process. Measured:

- time from starting the process to its `ready on` line;
- 16 and 64 concurrent streaming clients (`openai.AsyncOpenAI`): requests/s, output tokens/s,
  p50/p99 time to first token and latency, failed requests;
- batch throughput: the engine's batching (in-process `generate_batch`, and through the server)
  against a plain one-prompt-at-a-time `model.generate` loop over the same prompts;
- one request alone: non-streaming latency against the same request streamed.

Prints markdown tables and writes nothing else.

    .venv/bin/python bench/serve.py [--size small] [--max_tokens 64] [--prompts 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

THREADS = os.environ.get("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOPICS = ["cats", "the sea", "bread", "trains", "music", "rain", "chess", "mountains"]


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"Tell me something about {TOPICS[i % len(TOPICS)]}, please ({i})."}]
        for i in range(n)
    ]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def start_server(model: Path, max_batch_size: int) -> tuple[subprocess.Popen, str, float]:
    code = "from swift_core.cli.deploy_cmd import deploy; deploy.main()"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--model",
            str(model),
            "--port",
            "0",
            "--log_level",
            "warning",
            "--max_batch_size",
            str(max_batch_size),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": THREADS},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    stderr: list[str] = []
    threading.Thread(target=lambda: [stderr.append(x) for x in proc.stderr], daemon=True).start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                raise SystemExit("swift deploy exited:\n" + "".join(stderr[-20:])) from None
            continue
        if line.startswith("ready on "):
            return proc, line.split()[-1], time.perf_counter() - start
    proc.kill()
    raise SystemExit("swift deploy did not become ready in 300 s")


async def one_request(client, model: str, messages, max_tokens: int, stream: bool) -> dict[str, float]:
    start = time.perf_counter()
    if not stream:
        r = await client.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=0
        )
        return {
            "latency": time.perf_counter() - start,
            "ttft": float("nan"),
            "tokens": r.usage.completion_tokens,
        }
    ttft = None
    tokens = 0
    response = await client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in response:
        if ttft is None and chunk.choices and chunk.choices[0].delta.content:
            ttft = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    latency = time.perf_counter() - start
    return {"latency": latency, "ttft": latency if ttft is None else ttft, "tokens": tokens}


async def load_test(url: str, model: str, concurrency: int, total: int, max_tokens: int) -> dict[str, float]:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=600)
    todo = prompts(total)
    results: list[dict[str, float]] = []
    failed = 0

    async def worker() -> None:
        nonlocal failed
        while todo:
            messages = todo.pop()
            try:
                results.append(await one_request(client, model, messages, max_tokens, stream=True))
            except Exception:
                failed += 1

    start = time.perf_counter()
    async with client:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    tokens = sum(r["tokens"] for r in results)
    return {
        "requests/s": len(results) / wall,
        "tokens/s": tokens / wall,
        "ttft50": percentile([r["ttft"] for r in results], 50),
        "ttft99": percentile([r["ttft"] for r in results], 99),
        "lat50": percentile([r["latency"] for r in results], 50),
        "lat99": percentile([r["latency"] for r in results], 99),
        "failed": failed,
        "tokens": tokens,
        "wall": wall,
    }


async def single_latency(url: str, model: str, max_tokens: int, repeats: int) -> dict[str, list[float]]:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=600)
    messages = prompts(1)[0]
    out: dict[str, list[float]] = {"plain": [], "stream": [], "ttft": []}
    async with client:
        for _ in range(repeats):
            out["plain"].append((await one_request(client, model, messages, max_tokens, False))["latency"])
            r = await one_request(client, model, messages, max_tokens, True)
            out["stream"].append(r["latency"])
            out["ttft"].append(r["ttft"])
    return out


def offline_throughput(model_dir: Path, n: int, max_tokens: int) -> dict[str, tuple[float, int]]:
    """(seconds, output tokens): the engine's batching vs a plain one-at-a-time generate loop."""
    import torch
    from transformers import AutoModelForCausalLM

    from swift_core.datasets.encode import encode_prompt
    from swift_core.engines.protocol import EngineConfig, GenerationRequest
    from swift_core.engines.transformers.engine import TransformersEngine

    engine = TransformersEngine(EngineConfig(model=str(model_dir), max_batch_size=n))
    convs = prompts(n)
    requests = [GenerationRequest(messages=m, max_tokens=max_tokens, temperature=0) for m in convs]
    engine.generate_batch(requests[:2])  # warm-up
    start = time.perf_counter()
    responses = engine.generate_batch(requests)
    engine_s = time.perf_counter() - start
    engine_tokens = sum(r.completion_tokens for r in responses)
    asyncio.run(engine.close())

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ids = [encode_prompt(engine.template, engine.tokenizer, m) for m in convs]
    stops = engine.stop_ids
    plain_tokens = 0
    with torch.inference_mode():
        model.generate(
            input_ids=torch.tensor([ids[0]]), max_new_tokens=2, do_sample=False, pad_token_id=stops[0]
        )
        start = time.perf_counter()
        for p in ids:
            out = model.generate(
                input_ids=torch.tensor([p]),
                attention_mask=torch.ones(1, len(p), dtype=torch.long),
                max_new_tokens=max_tokens,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=stops[0],
            )
            plain_tokens += out.shape[1] - len(p)
        plain_s = time.perf_counter() - start
    return {"engine": (engine_s, engine_tokens), "plain": (plain_s, plain_tokens)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=64, help="prompts of the batch-throughput comparison")
    parser.add_argument("--repeats", type=int, default=5, help="single-request latency repeats")
    args = parser.parse_args()

    from swift_core.models.tiny import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="swift-bench-serve-") as tmp:
        model_dir = build_tiny_model(
            Path(tmp) / "model", model_type="qwen2", template="qwen2_5", size=args.size
        )
        served = model_dir.name
        proc, url, ready_s = start_server(model_dir, max_batch_size=64)
        try:
            rows = {}
            for concurrency in (16, 64):
                asyncio.run(load_test(url, served, concurrency, concurrency, 4))  # warm-up
                rows[concurrency] = asyncio.run(
                    load_test(url, served, concurrency, max(4 * concurrency, 64), args.max_tokens)
                )
            latency = asyncio.run(single_latency(url, served, args.max_tokens, args.repeats))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        offline = offline_throughput(model_dir, args.prompts, args.max_tokens)

    print(
        f"## swift deploy, transformers engine ({args.size} Qwen2, fp32, CPU, OMP_NUM_THREADS={THREADS}, "
        f"max_tokens={args.max_tokens}, greedy, streaming clients)\n"
    )
    print(f"Server ready {ready_s:.1f} s after the process started (imports + model load + bind).\n")
    print(
        "| concurrent clients | requests | req/s | output tok/s | TTFT p50 s | TTFT p99 s | latency p50 s | latency p99 s | failed |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for concurrency, r in rows.items():
        print(
            f"| {concurrency} | {max(4 * concurrency, 64)} | {r['requests/s']:.2f} | {r['tokens/s']:.0f} | "
            f"{r['ttft50']:.3f} | {r['ttft99']:.3f} | {r['lat50']:.3f} | {r['lat99']:.3f} | {r['failed']} |"
        )
    print(f"\n## Batch throughput, {args.prompts} prompts, max_tokens={args.max_tokens}\n")
    print("| method | seconds | output tokens | tokens/s | vs plain loop |")
    print("|---|---|---|---|---|")
    plain_s, plain_tokens = offline["plain"]
    plain_rate = plain_tokens / plain_s
    engine_s, engine_tokens = offline["engine"]
    served64 = rows[64]
    for name, (seconds, tokens) in (
        ("plain `model.generate` loop, one prompt at a time", (plain_s, plain_tokens)),
        ("engine `generate_batch` (in-process, dynamic batching)", (engine_s, engine_tokens)),
        ("`swift deploy`, 64 concurrent clients (HTTP, streaming)", (served64["wall"], served64["tokens"])),
    ):
        print(
            f"| {name} | {seconds:.2f} | {tokens} | {tokens / seconds:.0f} | {tokens / seconds / plain_rate:.1f}x |"
        )
    print(f"\n## One request alone (median of {args.repeats} repeats)\n")
    print("| mode | latency s | time to first token s |")
    print("|---|---|---|")
    print(f"| non-streaming | {statistics.median(latency['plain']):.3f} | - |")
    print(
        f"| streaming | {statistics.median(latency['stream']):.3f} | {statistics.median(latency['ttft']):.3f} |"
    )


if __name__ == "__main__":
    main()
