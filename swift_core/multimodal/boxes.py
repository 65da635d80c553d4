"""Grounding boxes: stored in the original image's pixels, written the way each family reads them.

ms-swift's grounding rows carry `objects: {"ref": [...], "bbox": [[x1, y1, x2, y2], ...]}` in the
original image's pixels, and messages with `<ref-object>` / `<bbox>` placeholders. Families disagree
on coordinates: Qwen2-VL reads 0-1000 of the image (`<|box_start|>(x1,y1),(x2,y2)<|box_end|>`),
Qwen2.5-VL absolute pixels of the image as resized for the model (JSON `bbox_2d`). A codec holds
one convention both ways, so a box goes to the model and a generated answer comes back to original
pixels through the same code; `ModelFamily.box_codec` names a family's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from swift_core.datasets.formats import RowError
from swift_core.errors import SwiftError

REF, BOX = "<ref-object>", "<bbox>"
Size = tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class BoxCodec:
    """How one family writes a box. `scale` is "norm1000" (0-1000 of the image) or "resized"
    (pixels of the resized image)."""

    name: str
    scale: str

    def to_model(self, box: Sequence[float], original: Size, resized: Size) -> list[int]:
        """Original-image pixels -> the integers the model writes."""
        sx, sy = self._scales(original, resized)
        x1, y1, x2, y2 = box
        return [round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy)]

    def from_model(self, coords: Sequence[float], original: Size, resized: Size) -> list[float]:
        """The model's integers -> original-image pixels."""
        sx, sy = self._scales(original, resized)
        x1, y1, x2, y2 = coords
        return [x1 / sx, y1 / sy, x2 / sx, y2 / sy]

    def _scales(self, original: Size, resized: Size) -> tuple[float, float]:
        (w, h), (rw, rh) = original, resized
        if self.scale == "norm1000":
            return 1000 / w, 1000 / h
        return rw / w, rh / h

    def ref_text(self, ref: str) -> str:
        return f"<|object_ref_start|>{ref}<|object_ref_end|>" if self.scale == "norm1000" else ref

    def box_text(self, coords: Sequence[int], ref: str) -> str:
        x1, y1, x2, y2 = coords
        if self.scale == "norm1000":
            return f"<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>"
        return json.dumps({"bbox_2d": [x1, y1, x2, y2], "label": ref})

    def parse(self, text: str) -> list[list[int]]:
        """Every box written in `text`, in the model's coordinates."""
        if self.scale == "norm1000":
            pattern = r"\((-?\d+),\s*(-?\d+)\)\s*,\s*\((-?\d+),\s*(-?\d+)\)"
        else:
            pattern = r'"bbox_2d"\s*:\s*\[\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\]'
        return [[int(v) for v in m] for m in re.findall(pattern, text)]


BOX_CODECS: dict[str, BoxCodec] = {}


def register_box_codec(codec: BoxCodec) -> None:
    if codec.name in BOX_CODECS and BOX_CODECS[codec.name] != codec:
        raise SwiftError(f"box codec {codec.name!r} is registered twice, differently")
    BOX_CODECS[codec.name] = codec


register_box_codec(BoxCodec("qwen2_vl", "norm1000"))
register_box_codec(BoxCodec("qwen2_5_vl", "resized"))


def box_codec(name: str) -> BoxCodec:
    try:
        return BOX_CODECS[name]
    except KeyError:
        raise SwiftError(f"unknown box codec {name!r}; known: {', '.join(sorted(BOX_CODECS))}") from None


def _objects(row: dict[str, Any]) -> tuple[list[str], list[list[float]], list[int]]:
    objects = row.get("objects") or {}
    refs = objects.get("ref") or []
    boxes = objects.get("bbox") or []
    refs = [refs] if isinstance(refs, str) else list(refs)
    if boxes and not isinstance(boxes[0], (list, tuple)):
        boxes = [boxes]
    for i, box in enumerate(boxes):
        if not (
            isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
        ):
            raise RowError(f"objects.bbox[{i}]", f"expected [x1, y1, x2, y2] in pixels, got {box!r}")
        if box[2] < box[0] or box[3] < box[1]:
            raise RowError(f"objects.bbox[{i}]", f"x2/y2 must not be below x1/y1: {box!r}")
    image_ids = list(objects.get("image_id") or [0] * len(boxes))
    return [str(r) for r in refs], [list(map(float, b)) for b in boxes], [int(i) for i in image_ids]


def apply_objects(row: dict[str, Any], codec: BoxCodec, sizes: Sequence[tuple[Size, Size]]) -> dict[str, Any]:
    """`row` with its `<ref-object>`/`<bbox>` placeholders written for `codec`; `sizes` holds each
    image's (original, resized) size. Rows without objects come back unchanged."""
    if not row.get("objects"):
        return row
    refs, boxes, image_ids = _objects(row)
    counters = {"ref": 0, "box": 0}

    def ref_for(match: re.Match) -> str:
        i = counters["ref"]
        counters["ref"] += 1
        if i >= len(refs):
            raise RowError(
                "objects.ref", f"the messages have more {REF} placeholders than objects.ref ({len(refs)})"
            )
        return codec.ref_text(refs[i])

    def box_for(match: re.Match) -> str:
        i = counters["box"]
        counters["box"] += 1
        if i >= len(boxes):
            raise RowError(
                "objects.bbox", f"the messages have more {BOX} placeholders than objects.bbox ({len(boxes)})"
            )
        image = image_ids[i] if i < len(image_ids) else 0
        if image >= len(sizes):
            raise RowError(
                f"objects.image_id[{i}]", f"image {image} does not exist (the row has {len(sizes)})"
            )
        original, resized = sizes[image]
        ref = refs[i] if i < len(refs) else ""
        return codec.box_text(codec.to_model(boxes[i], original, resized), ref)

    messages = []
    for m in row["messages"]:
        content = re.sub(re.escape(BOX), box_for, re.sub(re.escape(REF), ref_for, m["content"]))
        messages.append({**m, "content": content})
    return {**row, "messages": messages}
