"""LoRA training on realistic data: Swift against ms-swift 4.6 on the same model, rows and flags.

What is compared. A ~25M-parameter Qwen2 (hidden 512, 8 layers, random weights, a tokenizer
trained on the spot) and 1,200 chat rows whose rendered lengths are lognormal (mean ~253 tokens,
max ~954), both built here by `bench/realistic_data.py`. LoRA r8 / alpha 32 / dropout 0.05 on all
linear layers, fp32, batch 8, max_length 1024, 20 steps, learning rate 1e-4, seed 42, through
`swift sft` (this repo's `.venv`) and ms-swift's `swift sft` (its own venv, `make setup-msswift`).
Each setting runs in a fresh process; the settings alternate between the two frameworks and with
`--repeats N` the whole sequence is repeated N times (run 1 of every setting, then run 2, ...), so
a change in the machine's load hits both frameworks alike:

    ms-swift-gc          ms-swift, gradient checkpointing on (ms-swift's default)
    swift-gc             swift sft --gradient_checkpointing true
    ms-swift             ms-swift --gradient_checkpointing false
    swift                swift sft (its default: checkpointing off)
    swift-packing        swift sft --packing true          (ms-swift refuses packing without flash attention)
    swift-padding-free   swift sft --padding_free true
    swift-group          swift sft --group_by_length true
    swift-token-budget   swift sft --max_tokens_per_batch 4096

A Swift setting whose flag `swift sft --help` does not list is skipped with a note.

How to read the table.
- wall s: from starting the process to its exit (imports, loading, preprocessing, training, the
  final checkpoint; Swift's cache of encoded rows starts empty each run, as ms-swift caches none by
  default). train s: the framework's own training time (Swift's `done:` line, ms-swift's
  `train_runtime`).
- real tokens: tokens trained that are not padding. Swift: `num_input_tokens_seen` (non-padding)
  from the last trainer_state.json / logging.jsonl. ms-swift counts no tokens it trains (its
  `--include_num_input_tokens_seen` only takes a bool, which counts padding too), so its count is
  ms-swift's own logged mean row length of this dataset x rows per step x steps: the expected count
  for rows drawn at random, not a measured one (160 of 1,200 rows: +-6%, one standard deviation). The table marks it `~`.
  The notes give each framework's own mean rendered row length: equal means both see the same rows.
- real tokens/s = real tokens / train s. % FLOP limit: against this CPU's fp32 matmul peak measured in
  this run (large `torch.mm` at the bench's thread count, best of before and after the runs) divided by
  4 x the model's parameters (LoRA: forward 2N + backward through activations 2N FLOPs per token).
- peak RSS tree MB: the most the process and all its children held at once (psutil, sampled every
  0.2 s, and never below the largest process's peak: ms-swift's CLI runs its trainer in a child
  process, ~200 MB more). largest process MB: GNU time's %M, the peak of the single largest
  process. Swift's own summary line says how much of its peak is activations: the last column.

    .venv/bin/python bench/train_realistic.py [--work DIR] [--steps 20] [--batch 8] [--max_length 1024]
        [--threads 2] [--repeats 1] [--only swift,ms-swift] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MSSWIFT_VENV = REPO / ".venv-msswift"
sys.path.insert(0, str(HERE))


@dataclass(frozen=True)
class Setting:
    name: str
    framework: str  # "swift" or "ms-swift"
    flags: tuple[str, ...]
    label: str


SETTINGS = (
    Setting(
        "ms-swift-gc",
        "ms-swift",
        ("--gradient_checkpointing", "true"),
        "ms-swift, gradient checkpointing on (its default)",
    ),
    Setting(
        "swift-gc", "swift", ("--gradient_checkpointing", "true"), "swift sft --gradient_checkpointing true"
    ),
    Setting(
        "ms-swift", "ms-swift", ("--gradient_checkpointing", "false"), "ms-swift, gradient checkpointing off"
    ),
    Setting("swift", "swift", ("--gradient_checkpointing", "false"), "swift sft (default: off)"),
    Setting("swift-packing", "swift", ("--packing", "true"), "swift sft --packing true"),
    Setting("swift-padding-free", "swift", ("--padding_free", "true"), "swift sft --padding_free true"),
    Setting("swift-group", "swift", ("--group_by_length", "true"), "swift sft --group_by_length true"),
    Setting(
        "swift-token-budget",
        "swift",
        ("--max_tokens_per_batch", "4096"),
        "swift sft --max_tokens_per_batch 4096",
    ),
)


@dataclass
class Run:
    setting: Setting
    repeat: int
    wall_s: float = 0.0
    train_s: float = 0.0
    steps: int = 0
    real_tokens: float = 0.0
    tokens_measured: bool = True
    peak_tree_mb: float = 0.0
    largest_mb: float = 0.0
    activations_mb: float | None = None
    mean_row_tokens: float | None = None  # the framework's own mean rendered row length of the dataset
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.real_tokens / self.train_s if self.train_s > 0 else 0.0


# --- the work: model, rows, the CPU's limit -------------------------------------------------------


def build_work(work: Path) -> tuple[Path, Path]:
    """The model folder and the rows, built once per work dir (reused with --work)."""
    import realistic_data

    model = realistic_data.build_model(work / "model")
    rows = realistic_data.write_rows(work / "rows.jsonl", model)
    return model, rows


def count_params(model: Path) -> int:
    """Parameters as stored (tied embeddings once), read from the safetensors headers."""
    from safetensors import safe_open

    total = 0
    for f in sorted(model.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for key in st.keys():  # noqa: SIM118 (safe_open is not iterable)
                n = 1
                for d in st.get_slice(key).get_shape():
                    n *= d
                total += n
    return total


def matmul_peak_gflops(threads: int, n: int = 2048, reps: int = 6) -> float:
    """Best fp32 `torch.mm` rate at `threads` threads: the ceiling any fp32 training step can reach."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)  # warm-up: thread pool, page faults
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t)
        return 2 * n**3 / best / 1e9
    finally:
        torch.set_num_threads(before)


# --- one run ---------------------------------------------------------------------------------------


def common_flags(model: Path, rows: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """The flags both CLIs spell alike: the same LoRA, data, steps and schedule."""
    return [
        "--model", str(model),
        "--dataset", str(rows),
        "--tuner_type", "lora",
        "--lora_rank", "8",
        "--lora_alpha", "32",
        "--lora_dropout", "0.05",
        "--target_modules", "all-linear",
        "--per_device_train_batch_size", str(args.batch),
        "--max_length", str(args.max_length),
        "--max_steps", str(args.steps),
        "--learning_rate", "1e-4",
        "--seed", "42",
        "--save_steps", "100000",
        "--output_dir", str(out),
        "--torch_dtype", "float32",
        "--split_dataset_ratio", "0",
        "--dataloader_num_workers", "0",
        "--report_to", "none",
        "--logging_steps", "1",
    ]  # fmt: skip


def swift_cli() -> Path:
    """The `swift` script of the interpreter running the bench (this repo's .venv)."""
    beside = Path(sys.executable).parent / "swift"
    return beside if beside.exists() else Path(shutil.which("swift") or "swift")


def command(s: Setting, model: Path, rows: Path, out: Path, args: argparse.Namespace) -> list[str]:
    flags = common_flags(model, rows, out, args)
    if s.framework == "ms-swift":
        # ms-swift needs to be told the family and template; Swift reads them from the folder.
        extra = ["--model_type", "qwen2", "--template", "qwen", "--dataset_num_proc", "1"]
        return [str(MSSWIFT_VENV / "bin" / "swift"), "sft", *flags, *extra, *s.flags]
    return [str(swift_cli()), "sft", *flags, *s.flags]


def child_env(threads: int) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MODELSCOPE_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }


def run_measured(cmd: list[str], env: dict[str, str], log: Path) -> tuple[int, float, float, float]:
    """(exit code, wall s, peak RSS of the process tree MB, largest single process MB)."""
    maxrss_file = log.with_suffix(".maxrss")
    gnu_time = Path("/usr/bin/time")
    full = [str(gnu_time), "-f", "%M", "-o", str(maxrss_file), *cmd] if gnu_time.exists() else cmd
    try:
        import psutil
    except ImportError:  # GNU time's figure alone then
        psutil = None
    peak_tree = 0
    with log.open("w") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=fh, stderr=subprocess.STDOUT, env=env)
        root = psutil.Process(proc.pid) if psutil else None
        while proc.poll() is None:
            if root is not None:
                rss = 0
                try:
                    tree = [root, *root.children(recursive=True)]
                except psutil.Error:
                    tree = []
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
                peak_tree = max(peak_tree, rss)
            time.sleep(0.2)
        wall = time.perf_counter() - start
    largest = 0.0
    if maxrss_file.exists():
        text = maxrss_file.read_text().strip().splitlines()
        if text and text[-1].isdigit():
            largest = int(text[-1]) / 1024  # KiB
    return proc.returncode, wall, peak_tree / 2**20, largest


SWIFT_DONE = re.compile(
    r"done: (\d+) steps in ([\d.]+)s.*?([\d,]+) train tokens/s.*?peak RSS ([\d,]+) MB(.*)"
)
DATA_TOKENS = re.compile(r"data: ([\d,]+) train rows \(([\d,]+) tokens\)")
ACTIVATIONS = re.compile(r"~([\d,]+) MB of it activations")


def swift_tokens_seen(out: Path) -> float | None:
    """`num_input_tokens_seen` of the furthest trainer_state.json, else of logging.jsonl."""
    best: tuple[int, float] | None = None
    for f in out.rglob("trainer_state.json"):
        state = json.loads(f.read_text())
        seen = state.get("num_input_tokens_seen")
        if seen and (best is None or state.get("global_step", 0) > best[0]):
            best = (state.get("global_step", 0), float(seen))
    if best:
        return best[1]
    for f in out.rglob("logging.jsonl"):
        seen = [json.loads(x).get("num_input_tokens_seen") for x in f.read_text().splitlines() if x.strip()]
        seen = [s for s in seen if s]
        if seen:
            return float(seen[-1])
    return None


def parse_swift(run: Run, log: Path, out: Path) -> None:
    m = SWIFT_DONE.search(log.read_text(errors="replace"))
    if not m:
        run.error = "no `done:` line in the log"
        return
    run.steps, run.train_s = int(m.group(1)), float(m.group(2))
    data = DATA_TOKENS.search(log.read_text(errors="replace"))
    if data:
        run.mean_row_tokens = int(data.group(2).replace(",", "")) / int(data.group(1).replace(",", ""))
    act = ACTIVATIONS.search(m.group(5))
    run.activations_mb = float(act.group(1).replace(",", "")) if act else None
    seen = swift_tokens_seen(out)
    if seen is None:
        run.real_tokens = float(m.group(3).replace(",", "")) * run.train_s
        run.notes.append("tokens from the printed tokens/s x train s")
    else:
        run.real_tokens = seen


def parse_msswift(run: Run, out: Path, batch: int) -> None:
    """ms-swift pads batches of exactly `batch` rows (it cannot pack on a CPU): rows per step = batch."""
    logs = sorted(out.glob("v*/logging.jsonl"))
    if not logs:
        run.error = "no logging.jsonl"
        return
    lines = [json.loads(x) for x in logs[-1].read_text().splitlines() if x.strip()]
    final = next((x for x in reversed(lines) if "train_runtime" in x), None)
    stats = next((x for x in reversed(lines) if "train_dataset" in x), None)
    if final is None:
        run.error = "no train_runtime in logging.jsonl"
        return
    run.train_s = float(final["train_runtime"])
    run.steps = int(str(final.get("global_step/max_steps", "0/0")).split("/")[0])
    seen = next((x["num_input_tokens_seen"] for x in reversed(lines) if x.get("num_input_tokens_seen")), None)
    if seen:  # should ms-swift ever count them
        run.real_tokens = float(seen)
        return
    if stats is None:
        run.error = "no train_dataset statistics in logging.jsonl"
        return
    # "253.035000±178.544286, min=48.000000, max=954.000000, size=1200": ms-swift's own row lengths
    mean = float(re.match(r"\s*([\d.]+)", stats["train_dataset"]).group(1))
    run.mean_row_tokens = mean
    run.real_tokens = mean * batch * run.steps
    run.tokens_measured = False


def one_run(s: Setting, repeat: int, model: Path, rows: Path, runs_dir: Path, args) -> Run:
    run = Run(s, repeat)
    out = runs_dir / f"{s.name}-{repeat}"
    shutil.rmtree(out, ignore_errors=True)
    log = runs_dir / f"{s.name}-{repeat}.log"
    cmd = command(s, model, rows, out, args)
    env = child_env(args.threads)
    # Swift caches encoded rows across runs (ms-swift re-encodes by default): a cold cache each run.
    cache = runs_dir / f"{s.name}-{repeat}.swift-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env["SWIFT_CACHE"] = str(cache)
    code, run.wall_s, run.peak_tree_mb, run.largest_mb = run_measured(cmd, env, log)
    # The tree held at least what its largest process did (0.2 s sampling can miss that peak).
    run.peak_tree_mb = max(run.peak_tree_mb, run.largest_mb)
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        run.error = f"exit {code}: {tail[0][:200]} (log: {log})"
        return run
    if s.framework == "swift":
        parse_swift(run, log, out)
    else:
        parse_msswift(run, out, args.batch)
    return run


# --- the report ------------------------------------------------------------------------------------


def versions() -> str:
    import importlib.metadata as md

    def mine(names: list[str]) -> str:
        out = []
        for n in names:
            with contextlib.suppress(md.PackageNotFoundError):
                out.append(f"{n} {md.version(n)}")
        return ", ".join(out)

    names = ["torch", "transformers", "peft", "trl", "accelerate"]
    line = f"{mine(['swift-core'])} ({mine(names)})"
    py = MSSWIFT_VENV / "bin" / "python"
    if py.exists():
        code = (
            "import importlib.metadata as m;"
            f"print(', '.join(n + ' ' + m.version(n) for n in {['ms-swift', *names]!r}))"
        )
        got = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
        if got.returncode == 0:
            line += f"; ms-swift venv: {got.stdout.strip()}"
    return line


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def table(runs: list[Run], limit_tps: float) -> str:
    head = (
        "| run | n | wall s | train s | real tokens | real tokens/s | % FLOP limit | peak RSS tree MB "
        "| largest process MB | activations MB (Swift's own) |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    order: list[Setting] = []
    for r in runs:
        if r.setting not in order:
            order.append(r.setting)
    for s in order:
        ok = [r for r in runs if r.setting == s and not r.error]
        if not ok:
            lines.append(f"| {s.label} | 0 | failed | | | | | | | |")
            continue
        approx = "" if all(r.tokens_measured for r in ok) else "~"
        tps = median([r.tokens_per_s for r in ok])
        acts = [r.activations_mb for r in ok if r.activations_mb is not None]
        lines.append(
            f"| {s.label} | {len(ok)} | {median([r.wall_s for r in ok]):.0f} | {median([r.train_s for r in ok]):.1f} "
            f"| {approx}{median([r.real_tokens for r in ok]):,.0f} | {approx}{tps:,.0f} "
            f"| {approx}{100 * tps / limit_tps:.0f}% | {median([r.peak_tree_mb for r in ok]):,.0f} "
            f"| {median([r.largest_mb for r in ok]):,.0f} | {f'{median(acts):,.0f}' if acts else ''} |"
        )
    return "\n".join(lines)


def per_run_table(runs: list[Run]) -> str:
    lines = [
        "| run | repeat | wall s | train s | real tokens/s | peak RSS tree MB |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        if r.error:
            lines.append(f"| {r.setting.name} | {r.repeat} | failed | | | |")
        else:
            lines.append(
                f"| {r.setting.name} | {r.repeat} | {r.wall_s:.0f} | {r.train_s:.1f} | {r.tokens_per_s:,.0f} | {r.peak_tree_mb:,.0f} |"
            )
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=None, help="reuse model and rows here (default: a temp dir)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max_length", type=int, default=1024)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument(
        "--only", default="", help="comma-separated setting names: " + ", ".join(s.name for s in SETTINGS)
    )
    p.add_argument("--out", type=Path, default=None, help="also write the report here")
    return p.parse_args(argv)


def select(only: str) -> list[Setting]:
    if not only:
        return list(SETTINGS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {s.name: s for s in SETTINGS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--only: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [s for s in SETTINGS if s.name in names]


def runnable(settings: list[Setting]) -> tuple[list[Setting], list[str]]:
    """Drop what cannot run here (no ms-swift venv, a Swift flag not there yet), each with a note."""
    notes, keep = [], []
    help_text = subprocess.run(
        [str(swift_cli()), "sft", "--help"], capture_output=True, text=True, env=child_env(1)
    ).stdout
    for s in settings:
        if s.framework == "ms-swift" and not (MSSWIFT_VENV / "bin" / "swift").exists():
            notes.append(f"skipped {s.name}: no {MSSWIFT_VENV.name} (run `make setup-msswift`)")
        elif s.framework == "swift" and not re.search(rf"^\s+{re.escape(s.flags[0])}\b", help_text, re.M):
            notes.append(f"skipped {s.name}: `swift sft --help` lists no {s.flags[0]}")
        else:
            keep.append(s)
    return keep, notes


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings, notes = runnable(select(args.only))
    work = args.work or Path(tempfile.mkdtemp(prefix="train_realistic_"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    model, rows = build_work(work)
    params = count_params(model)
    peak_before = matmul_peak_gflops(args.threads)
    runs_dir = work / "runs"
    runs_dir.mkdir(exist_ok=True)
    runs: list[Run] = []
    for repeat in range(1, args.repeats + 1):
        for s in settings:
            print(f"[{repeat}/{args.repeats}] {s.name} ...", file=sys.stderr, flush=True)
            run = one_run(s, repeat, model, rows, runs_dir, args)
            print(
                f"  wall {run.wall_s:.0f}s, train {run.train_s:.1f}s, {run.tokens_per_s:,.0f} real tokens/s, "
                f"peak tree {run.peak_tree_mb:,.0f} MB{' ERROR ' + run.error if run.error else ''}",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
    peak_after = matmul_peak_gflops(args.threads)
    load_after = os.getloadavg()
    peak = max(peak_before, peak_after)
    limit_tps = peak * 1e9 / (4 * params)
    notes += [f"{r.setting.name} run {r.repeat}: {r.error}" for r in runs if r.error]
    notes += sorted({f"{r.setting.name}: {n}" for r in runs for n in r.notes})
    for fw in ("swift", "ms-swift"):
        means = {round(r.mean_row_tokens, 1) for r in runs if r.setting.framework == fw and r.mean_row_tokens}
        if means:
            notes.append(
                f"{fw} renders the rows to a mean of {', '.join(f'{m:.1f}' for m in sorted(means))} tokens"
            )
    report = "\n".join(
        [
            f"## LoRA SFT on realistic data: Swift vs ms-swift ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {args.threads} threads a run; load average "
            f"(1/5/15 min) before {'/'.join(f'{x:.2f}' for x in load_before)}, after "
            f"{'/'.join(f'{x:.2f}' for x in load_after)}.",
            f"Versions: {versions()}.",
            f"Model: Qwen2, {params / 1e6:.1f}M parameters; {sum(1 for _ in rows.open())} rows; LoRA r8 all-linear; "
            f"batch {args.batch}, max_length {args.max_length}, {args.steps} steps, {args.repeats} repeat(s), "
            "settings alternating between the frameworks.",
            f"fp32 matmul peak {peak:.0f} GFLOP/s (before {peak_before:.0f}, after {peak_after:.0f}); "
            f"FLOP limit = peak / (4 x params) = {limit_tps:,.0f} tokens/s.",
            "",
            table(runs, limit_tps),
            "",
            "Values are medians over the repeats. `~`: ms-swift counts no trained tokens; its real tokens are its own "
            "logged mean row length x batch x steps (expected, not measured). Swift's are its non-padding "
            "`num_input_tokens_seen`.",
            *([""] + [f"- {n}" for n in notes] if notes else []),
            *(["", per_run_table(runs)] if args.repeats > 1 else []),
            "",
        ]
    )
    print(report)
    if args.out:
        args.out.write_text(report)
    if not args.work:
        print(f"(work dir kept for the logs: {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
