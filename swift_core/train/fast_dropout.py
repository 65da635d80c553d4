"""Dropout whose random mask costs a quarter of the random numbers, for training on the CPU.

LoRA's input dropout (`--lora_dropout`, 0.05 by default here and in ms-swift) draws one random
number per element for each of the seven adapted projections of every layer; on the CPU torch's
Bernoulli sampling took 7-10% of a LoRA step of the issue-20 work (profiled), more than the
adapters' own matmuls. Here one 64-bit random draw gives four 16-bit lanes, each kept when it is
at or above `p` of the int16 range, so the keep probability is `p` rounded to 1/65,536 (0.05 ->
0.0500030...) and the output is scaled by 1/(1 - that p), as `nn.Dropout` scales. Draws come
from torch's generator, so runs stay reproducible under a seed. Off the CPU (where dropout is a
fused kernel) and in eval mode it is `nn.Dropout` itself.
"""

from __future__ import annotations

from typing import Any

import torch

from swift_core.tuners.lora_cpu_kernel import LANES, keep_scale, mask_cut


class FastDropout(torch.nn.Dropout):
    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)
        # The same rounding of p as the LoRA CPU kernels' masks.
        self.cut = mask_cut(p)
        self.scale = keep_scale(self.cut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or not x.is_floating_point():
            return super().forward(x)
        drop, scale = self.drop_mask(x)
        # torch.where with the bool mask: one pass writes the masked copy. `x * mask` first converts
        # the whole mask to float (seen as copy_ in a profile); an out-of-place masked_fill clones x.
        return torch.where(drop, 0.0, x).mul_(scale)

    def drop_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The elements to zero (bool, x's shape) and the scale of the others: the draws `forward`
        makes, for callers that apply the mask themselves (the fused LoRA layer)."""
        n = x.numel()
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
        drop = words.view(torch.int16)[:n].view(x.shape) < self.cut - LANES // 2
        return drop, self.scale


def use_fast_dropout(model: Any) -> int:
    """Swap every plain `nn.Dropout` with p > 0 for `FastDropout`; returns how many."""
    swapped = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Dropout and child.p > 0:
                fast = FastDropout(child.p)
                fast.train(child.training)
                setattr(parent, name, fast)
                swapped += 1
    return swapped
