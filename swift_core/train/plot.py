"""The loss curve of a run as a PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_loss(log_history: list[dict[str, Any]], path: Path) -> Path | None:
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h and "step" in h]
    if not train and not evals:
        return None
    try:
        import matplotlib
    except ImportError:  # a finished training must not fail for want of a plot
        import logging

        logging.getLogger("swift_core").warning(
            "matplotlib is not installed: no loss curve (pip install matplotlib)"
        )
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train loss")
    if evals:
        ax.plot(*zip(*evals), marker="o", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    rewards = [(h["step"], h["reward"]) for h in log_history if "reward" in h and "step" in h]
    if rewards:  # online RL (GRPO): the mean reward is what should rise
        twin = ax.twinx()
        twin.plot(*zip(*rewards), color="tab:green", label="mean reward")
        twin.set_ylabel("reward")
        twin.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
