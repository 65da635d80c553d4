"""What a quantized export is measured by, so accuracy never collapses silently.

The source and the reloaded artifact are run on the same held-out token ids: perplexity before and
after, and one greedy generation each from the same prompt. Sizes are the bytes of the weight
files. The pipeline prints these and writes them into the output's manifest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def weight_bytes(folder: Path, files: list[str] | None = None) -> int:
    """Bytes of the weight files of a model folder (`files`, else every weights-like file)."""
    folder = Path(folder)
    paths = (
        [folder / f for f in files] if files else [p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES]
    )
    return sum(p.stat().st_size for p in paths if p.is_file())


def perplexity(model: Any, rows: list[list[int]]) -> float:
    """exp of the mean next-token NLL over all tokens of `rows` (one row per forward, no padding)."""
    import torch

    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for ids in rows:
            input_ids = torch.tensor([ids], device=device)
            logits = model(input_ids=input_ids).logits[0, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits, input_ids[0, 1:], reduction="sum")
            total += float(nll)
            count += len(ids) - 1
    return math.exp(total / max(count, 1))


def greedy_ids(model: Any, prompt_ids: list[int], max_new_tokens: int, eos_ids: list[int]) -> list[int]:
    """Greedy continuation, stopping at an end token (no sampling: comparable across models)."""
    import torch

    device = next(model.parameters()).device
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1]
            token = int(logits.argmax())
            if token in eos_ids:
                break
            ids.append(token)
    return ids[len(prompt_ids) :]


@dataclass
class Verification:
    size_before: int
    size_after: int
    ppl_before: float | None = None
    ppl_after: float | None = None
    eval_rows: int = 0
    sample_before: str | None = None
    sample_after: str | None = None
    same_tokens: float | None = None  # fraction of the greedy tokens that agree, position by position

    @property
    def ppl_delta(self) -> float | None:
        if self.ppl_before is None or self.ppl_after is None:
            return None
        return self.ppl_after - self.ppl_before

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ppl_delta": self.ppl_delta}

    def lines(self) -> list[str]:
        mb = 1 << 20
        ratio = self.size_before / self.size_after if self.size_after else float("nan")
        out = [
            f"size       {self.size_before / mb:10.2f} MB -> {self.size_after / mb:10.2f} MB  ({ratio:.2f}x smaller)"
        ]
        if self.ppl_before is not None and self.ppl_after is not None:
            rel = (self.ppl_after / self.ppl_before - 1) * 100 if self.ppl_before else float("nan")
            out.append(
                f"perplexity {self.ppl_before:13.3f} -> {self.ppl_after:13.3f}  ({rel:+.1f}%, {self.eval_rows} held-out rows)"
            )
        if self.sample_after is not None:
            out.append(f"greedy before: {self.sample_before!r}")
            out.append(
                f"greedy after:  {self.sample_after!r}  ({(self.same_tokens or 0) * 100:.0f}% same tokens)"
            )
        return out


def agreement(a: list[int], b: list[int]) -> float:
    if not a and not b:
        return 1.0
    same = sum(x == y for x, y in zip(a, b))
    return same / max(len(a), len(b))
