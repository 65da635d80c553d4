"""Runs of `swift sft` over several processes for tests, and what to compare them by.

A strategy is right when N processes train to what one process trains with the same rows per
step: `--nproc_per_node 2 --per_device_train_batch_size B` against one process with batch B and
`--gradient_accumulation_steps 2` (accelerate hands rank r the batches r, r+2, ... of the same
sampler, so each optimizer step sees the same rows). Strategy plugins use the same helpers.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swift_core.testing.install import run_swift

COMMON = (
    "--max_steps", "6", "--save_steps", "2", "--logging_steps", "1", "--seed", "7",
    "--learning_rate", "5e-3", "--lora_dropout", "0", "--per_device_train_batch_size", "2",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sft(
    model: Path,
    data: Path,
    out: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    return run_swift(
        "sft", "--model", str(model), "--dataset", str(data), "--output_dir", str(out), *COMMON, *extra,
        env=env, timeout=timeout,
    )  # fmt: skip


def distributed_sft(
    model: Path, data: Path, out: Path, *extra: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Two processes on this machine (Swift starts torchrun), on a port no other test uses."""
    return sft(model, data, out, "--nproc_per_node", "2", "--master_port", str(free_port()), *extra, **kw)


def single_process_reference(model: Path, data: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """The same rows per step as `distributed_sft` in one process."""
    return sft(model, data, out, "--gradient_accumulation_steps", "2")


def run_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith("v"))


def checkpoint(out: Path, step: int) -> Path:
    found = list(out.glob(f"v*/checkpoint-{step}"))
    assert len(found) == 1, found
    return found[0]


def losses(out: Path) -> list[float]:
    (run,) = run_folders(out)
    rows = [json.loads(line) for line in (run / "logging.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def adapter(checkpoint_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(checkpoint_dir / "adapter_model.safetensors"))


def max_adapter_difference(a: Path, b: Path) -> float:
    ta, tb = adapter(a), adapter(b)
    assert ta.keys() == tb.keys(), sorted(set(ta) ^ set(tb))
    return max(float((ta[k].float() - tb[k].float()).abs().max()) for k in ta)


def peft_logits(base: Path, checkpoint_dir: Path) -> Any:
    """Logits of base + adapter loaded in plain peft (no Swift code): the adapter is usable."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), checkpoint_dir).eval()
    ids = torch.arange(3, 27).reshape(2, 12)
    with torch.no_grad():
        return model(input_ids=ids).logits


_SHARED: dict[str, tuple[Path, Path, Path]] = {}


def shared_setup(root: Path) -> tuple[Path, Path, Path]:
    """(tiny model, 48 chat rows, folder holding the one-process reference run `root/single`).

    Built once per test process, whichever test module asks first (the core's and the strategy
    plugins' distributed tests compare against the same reference), in the first caller's `root`.
    """
    if "default" not in _SHARED:
        from swift_core.testing.datasets import write_chat_dataset
        from swift_core.testing.models import tiny_model

        model = tiny_model(root / "model", "qwen2_5")
        data = write_chat_dataset(root / "data", n=48).train
        ref = single_process_reference(model, data, root / "single")
        assert ref.returncode == 0, ref.stderr
        _SHARED["default"] = (model, data, root)
    return _SHARED["default"]
