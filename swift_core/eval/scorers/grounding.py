"""Grounding: intersection over union of a predicted box with the reference box.

Boxes are [x1, y1, x2, y2]; the prediction's box is the first four numbers in its text, so
"[10, 20, 50, 60]", "(10,20),(50,60)" and Qwen-VL's "<box>(10,20),(50,60)</box>" all read the same.
"""

from __future__ import annotations

import re

from swift_core.errors import SwiftError
from swift_core.eval.rows import TaskRow
from swift_core.eval.scorers.base import RowScore, Scorer

_NUM = re.compile(r"-?\d+(?:\.\d+)?")


def parse_box(value) -> list[float] | None:
    if isinstance(value, (list, tuple)):
        flat = [float(v) for v in (value[0] if value and isinstance(value[0], (list, tuple)) else value)]
    else:
        flat = [float(v) for v in _NUM.findall(str(value))]
    return flat[:4] if len(flat) >= 4 else None


def iou(a: list[float], b: list[float]) -> float:
    ax1, ay1, ax2, ay2 = min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]), max(a[1], a[3])
    bx1, by1, bx2, by2 = min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


class BoxIoU(Scorer):
    """Mean IoU; a prediction without four numbers scores 0."""

    def score(self, prediction: str, row: TaskRow) -> RowScore:
        ref = parse_box(row.reference)
        if ref is None:
            raise SwiftError(
                f"{row.where}, field 'reference': expected a box [x1, y1, x2, y2], got {row.reference!r}"
            )
        box = parse_box(prediction)
        return RowScore(iou(box, ref) if box else 0.0, extracted=None if box is None else str(box))
