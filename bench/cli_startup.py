"""Start-up time of the commands users run most often, against the floor and a familiar CLI.

Prints a table of medians over N runs (fresh processes): `python -c pass` (the floor),
`swift --help`, `swift plugins list`, and, where installed, `accelerate --help` and
`python -c "import torch"` (what a CLI pays if it imports torch at start-up).

    .venv/bin/python bench/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _time(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    swift = str(BIN / "swift")
    cases = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("swift --help", [swift, "--help"]),
        ("swift plugins list", [swift, "plugins", "list"]),
        ("swift plugins list --all --json", [swift, "plugins", "list", "--all", "--json"]),
    ]
    accelerate = shutil.which("accelerate", path=str(BIN))
    if accelerate:
        cases.append(("accelerate --help", [accelerate, "--help"]))
    cases.append(('python -c "import torch"', [sys.executable, "-c", "import torch"]))
    print(f"median of {runs} runs, fresh process each\n")
    print("| command | median s | goal |\n|---|---|---|")
    for label, command in cases:
        goal = "< 0.5" if label.startswith("swift") else ""
        print(f"| `{label}` | {_time(command, runs):.3f} | {goal} |")


if __name__ == "__main__":
    main()
