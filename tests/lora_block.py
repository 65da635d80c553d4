"""What the fused-LoRA tests share: a two-linear block and a counter of an autograd Function's calls."""

from __future__ import annotations

import torch


class Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = torch.nn.Linear(16, 24)  # with a bias, as Qwen2's q/k/v
        self.o = torch.nn.Linear(24, 16, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.o(torch.relu(self.q(x)))


def count_applies(monkeypatch, function: type[torch.autograd.Function]) -> list[int]:
    """A one-element list that counts `function.apply` calls from now on."""
    calls = [0]
    apply = function.apply

    def counted(*args):
        calls[0] += 1
        return apply(*args)

    monkeypatch.setattr(function, "apply", counted)
    return calls
