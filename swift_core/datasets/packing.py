"""Packing: several short encoded rows into one sequence of at most `max_length` tokens.

Each packed row keeps `position_ids` that restart at 0 for every original row; transformers
builds a block-diagonal attention from them (no attention across rows), and the first label of
every original row is ignored so no row is trained to predict the start of the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swift_core.datasets.encode import IGNORE_INDEX, EncodedRow


@dataclass
class PackedRow:
    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def add(self, row: EncodedRow) -> None:
        self.input_ids += row.input_ids
        self.labels += [IGNORE_INDEX, *row.labels[1:]]
        self.position_ids += list(range(len(row)))


def pack_rows(rows: list[EncodedRow], max_length: int) -> list[PackedRow]:
    """First-fit decreasing bin packing; rows longer than `max_length` must be truncated first."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    bins: list[PackedRow] = []
    free: list[int] = []
    for i in order:
        row = rows[i]
        if len(row) > max_length:
            raise ValueError(
                f"row of {len(row)} tokens exceeds max_length {max_length}; truncate before packing"
            )
        for b, space in enumerate(free):
            if len(row) <= space:
                bins[b].add(row)
                free[b] -= len(row)
                break
        else:
            packed = PackedRow()
            packed.add(row)
            bins.append(packed)
            free.append(max_length - len(row))
    return bins
