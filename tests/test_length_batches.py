"""Length-grouped and token-budget batches (`swift_core.datasets.length_batches`)."""

from __future__ import annotations

import random

import pytest

from swift_core.datasets.length_batches import LengthGroupedBatchSampler
from swift_core.errors import SwiftError


def _lengths(n: int = 600, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [max(8, min(950, int(rng.lognormvariate(5.2, 0.75)))) for _ in range(n)]


def _padded(lengths: list[int], batches: list[list[int]]) -> int:
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("budget", [None, 2048])
def test_every_row_once_per_epoch_deterministic_and_epochs_differ(budget):
    lengths = _lengths()
    a = LengthGroupedBatchSampler(lengths, seed=3, rows=8, max_tokens=budget)
    b = LengthGroupedBatchSampler(lengths, seed=3, rows=8, max_tokens=budget)
    epoch0 = list(a)
    assert epoch0 == list(b)
    assert sorted(i for batch in epoch0 for i in batch) == list(range(len(lengths)))
    assert len(epoch0) == len(a)
    a.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 != epoch0 and len(epoch1) == len(epoch0) == len(a)
    assert sorted(i for batch in epoch1 for i in batch) == list(range(len(lengths)))
    assert list(LengthGroupedBatchSampler(lengths, seed=4, rows=8, max_tokens=budget)) != epoch0


def test_grouping_cuts_padding_against_random_batches():
    lengths = _lengths()
    grouped = list(LengthGroupedBatchSampler(lengths, seed=0, rows=8))
    order = list(range(len(lengths)))
    random.Random(0).shuffle(order)
    shuffled = [order[k : k + 8] for k in range(0, len(order), 8)]
    real = sum(lengths)
    assert _padded(lengths, grouped) - real < 0.25 * (_padded(lengths, shuffled) - real)
    assert all(len(b) <= 8 for b in grouped)


def test_token_budget_bounds_every_step_and_the_heaviest_comes_first():
    lengths = _lengths()
    sampler = LengthGroupedBatchSampler(lengths, seed=0, max_tokens=2048)
    batches = list(sampler)
    costs = [len(b) * max(lengths[i] for i in b) for b in batches]
    assert max(costs) <= 2048 and costs[0] == max(costs)
    # rows per step vary with length: short rows share a step, long ones go alone
    assert min(len(b) for b in batches) <= 3 < 10 <= max(len(b) for b in batches)
    free = list(LengthGroupedBatchSampler(lengths, seed=0, max_tokens=2048, padded=False))
    assert max(sum(lengths[i] for i in b) for b in free) <= 2048
    assert len(free) <= len(batches)


def test_a_budget_below_the_longest_row_is_refused_naming_both():
    with pytest.raises(SwiftError, match=r"--max_tokens_per_batch 100 .*longest row \(950 tokens\)"):
        LengthGroupedBatchSampler([50, 950, 20], seed=0, max_tokens=100)
