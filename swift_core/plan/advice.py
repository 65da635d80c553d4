"""The cheapest change that makes a run fit, tried in order of what it costs the user.

Sharding more (ZeRO-3) costs communication; gradient checkpointing ~30% speed; a smaller batch
with more accumulation keeps the optimisation but costs throughput; offloading costs a lot of
speed; 4-bit weights cost quality; a shorter max_length changes the data. The first change (or
strategy) under which every device fits is the advice.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.plan.memory import STRATEGIES, Estimate, Workload, estimate, with_changes
from swift_core.plan.shape import ModelShape

HEADROOM = 0.9  # allocator fragmentation, the CUDA context, communication buffers


@dataclass(frozen=True)
class Advice:
    change: str  # the flags to add or change ("" when it fits as asked)
    strategy: str
    estimate: Estimate


def fits(e: Estimate, capacity: float) -> bool:
    return e.total <= capacity * HEADROOM


def best_fitting(
    shape: ModelShape, work: Workload, capacity: float, strategies: list[str]
) -> Estimate | None:
    fitting = [estimate(shape, work, STRATEGIES[s]) for s in strategies]
    fitting = [e for e in fitting if fits(e, capacity)]
    return min(fitting, key=lambda e: strategies.index(e.strategy)) if fitting else None


def advise(shape: ModelShape, work: Workload, capacity: float, strategies: list[str]) -> Advice | None:
    """None: nothing tried makes it fit."""
    plain = [s for s in strategies if "offload" not in s]
    found = best_fitting(shape, work, capacity, plain)
    if found is not None:
        return Advice("", found.strategy, found)
    tries: list[tuple[str, Workload, list[str]]] = []
    if not work.gradient_checkpointing:
        tries.append(
            ("--gradient_checkpointing true", with_changes(work, gradient_checkpointing=True), plain)
        )
    current = with_changes(work, gradient_checkpointing=True)
    batch, accumulation = work.batch, 1
    while batch > 1:
        batch //= 2
        accumulation *= 2
        tries.append(
            (
                f"--gradient_checkpointing true --per_device_train_batch_size {batch} "
                f"--gradient_accumulation_steps {accumulation} (x the current accumulation)",
                with_changes(current, batch=batch),
                plain,
            )
        )
    current = with_changes(current, batch=max(1, batch))
    offload = [s for s in strategies if "offload" in s]
    if offload:
        tries.append(("--gradient_checkpointing true, batch as above, with CPU offload", current, offload))
    if work.tuner != "full" and not work.quant_bits:
        tries.append(
            ("QLoRA: --quant_method bnb --quant_bits 4", with_changes(current, quant_bits=4), strategies)
        )
    length = work.max_length
    while length > 256:
        length //= 2
        tries.append(
            (f"--max_length {length} (rows get cut)", with_changes(current, max_length=length), strategies)
        )
    for change, changed, allowed in tries:
        found = best_fitting(shape, changed, capacity, allowed)
        if found is not None:
            return Advice(change, found.strategy, found)
    return None
