"""Trainer callbacks: a progress bar with loss and tokens/s, logging.jsonl, the loss curve."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class ProgressBarCallback(TrainerCallback):
    """One tqdm bar over the optimizer steps, showing the latest loss and throughput, on a
    terminal; elsewhere (a log file, a CI job, the web UI) one plain line per log (every
    --logging_steps steps) instead of a bar redrawn with carriage returns into one huge line."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.plain = not (isatty is not None and isatty())
        self.bar: Any = None
        self.start = 0.0
        self.start_tokens = 0
        self.start_step = 0
        self.tokens = 0
        self.elapsed = 0.0

    def tokens_per_second(self) -> float:
        """Input tokens per second over this session's steps (a resumed run counts its own)."""
        return self.tokens / self.elapsed if self.elapsed > 0 else 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero and not self.plain:
            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc="train",
                dynamic_ncols=True,
                file=self.stream,
            )
        self.start = time.perf_counter()
        self.start_tokens = state.num_input_tokens_seen
        self.start_step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        self.tokens = state.num_input_tokens_seen - self.start_tokens
        self.elapsed = time.perf_counter() - self.start
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        postfix = {}
        if "loss" in logs:
            postfix["loss"] = f"{logs['loss']:.4f}"
        if "eval_loss" in logs:
            postfix["eval_loss"] = f"{logs['eval_loss']:.4f}"
        postfix["tok/s"] = f"{(state.num_input_tokens_seen - self.start_tokens) / elapsed:,.0f}"
        if self.bar is not None:
            self.bar.set_postfix(postfix, refresh=True)
        elif self.plain and len(postfix) > 1:
            values = ", ".join(f"{k} {v}" for k, v in postfix.items())
            print(
                f"train: step {state.global_step}/{state.max_steps}: {values}", file=self.stream, flush=True
            )

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class JsonlLoggerCallback(TrainerCallback):
    """Appends every log (train and eval) to RUN/logging.jsonl, one JSON object a line."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, "time": time.time(), **logs}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")


class LossPlotCallback(TrainerCallback):
    """Writes RUN/loss.png at the end of training."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.path: Path | None = None

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from swift_core.train.plot import plot_loss

            self.path = plot_loss(state.log_history, self.run_dir / "loss.png")
