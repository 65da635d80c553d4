"""Small image tasks Swift generates, so that learning from images is measurable on a CPU in
minutes: coloured shapes (VQA, caption), rendered digits (OCR) and a shape's box (grounding).

Each task writes PNG files and a JSONL file of ms-swift rows next to them (image paths relative to
the data file, `objects` for grounding), and knows how to score an answer: exact match, or IoU >= 0.5
for boxes (`answer` of a row is what exact match compares against).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 60, 220), "yellow": (230, 210, 20)}
SHAPES = ("square", "circle")


@dataclass
class Sample:
    image: Any  # PIL
    row: dict[str, Any]  # without "images" (added when written)
    answer: Any  # what a correct answer equals (text, or a box in original pixels)


def _canvas(size: int) -> Any:
    from PIL import Image

    return Image.new("RGB", (size, size), (245, 245, 245))


def _shaded_canvas(size: int) -> Any:
    """A background whose tint changes with the position (red grows to the right, blue downwards),
    so every part of the image says where it is. Qwen2-VL's vision tower has rotary positions only,
    no absolute ones: on a plain background a tiny, untrained tower sees a cell's content the same
    wherever it is, and a box cannot be read off it."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(120, 250, size)
    pixels = np.empty((size, size, 3), dtype=np.uint8)
    pixels[..., 0] = ramp[None, :]
    pixels[..., 1] = 235
    pixels[..., 2] = ramp[:, None]
    return Image.fromarray(pixels)


def _draw(image: Any, shape: str, colour: str, box: tuple[int, int, int, int]) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLOURS[colour])


def _place(rnd: random.Random, size: int, side: int) -> tuple[int, int, int, int]:
    x, y = rnd.randint(0, size - side), rnd.randint(0, size - side)
    return (x, y, x + side - 1, y + side - 1)


def _chat(question: str, answer: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"<image>{question}"},
            {"role": "assistant", "content": answer},
        ]
    }


def vqa(rnd: random.Random, size: int) -> Sample:
    """'What colour is the square?' about an image of one coloured square (a circle of another
    colour beside it when the image is large enough to hold both)."""
    image = _canvas(size)
    colour = rnd.choice(list(COLOURS))
    side = size // 2
    if size >= 96:
        other = rnd.choice([c for c in COLOURS if c != colour])
        _draw(image, "circle", other, _place(rnd, size, side // 2))
    _draw(image, "square", colour, _place(rnd, size, side))
    return Sample(image, _chat("What colour is the square?", colour), colour)


def caption(rnd: random.Random, size: int) -> Sample:
    """'Describe the image.': a square of one colour at the top left and a circle of another at the
    bottom right, captioned from a small vocabulary ("a red square and a blue circle")."""
    image = _canvas(size)
    a, b = rnd.sample(list(COLOURS), 2)
    half = size // 2
    _draw(image, "square", a, (2, 2, half - 3, half - 3))
    _draw(image, "circle", b, (half + 2, half + 2, size - 3, size - 3))
    text = f"a {a} square and a {b} circle"
    return Sample(image, _chat("Describe the image.", text), text)


def ocr(rnd: random.Random, size: int, digits: int = 2, shaded: bool = False) -> Sample:
    """'Read the number.' about `digits` black digits rendered at a fixed place; `shaded`: on a
    background tinted by position (`_shaded_canvas`), which tells the digits' order apart."""
    from PIL import ImageDraw, ImageFont

    image = _shaded_canvas(size) if shaded else _canvas(size)
    text = "".join(rnd.choice("0123456789") for _ in range(digits))
    font = ImageFont.load_default(size=max(10, size // 2))
    ImageDraw.Draw(image).text((size // 8, size // 6), text, fill=(0, 0, 0), font=font)
    return Sample(image, _chat("Read the number.", text), text)


def _grid_box(rnd: random.Random, size: int, grid: int) -> tuple[int, int, int, int]:
    """A box filling one cell of a `grid` x `grid` layout of the image (a margin of 1/8 of the cell
    around it), so boxes come from grid * grid places."""
    cell = size // grid
    margin = cell // 8
    x, y = rnd.randrange(grid) * cell, rnd.randrange(grid) * cell
    return (x + margin, y + margin, x + cell - 1 - margin, y + cell - 1 - margin)


def grounding(rnd: random.Random, size: int, grid: int = 0, shaded: bool = False) -> Sample:
    """'Where is the circle?' answered with its box. `grid` 0 places a circle of any size anywhere;
    `grid` N puts it in one cell of an N x N layout (N * N possible boxes: a task small models can
    learn, and one whose cells line up with the visual tokens when the cell is 28 pixels).
    `shaded`: a background tinted by position (`_shaded_canvas`) instead of a plain one."""
    image = _shaded_canvas(size) if shaded else _canvas(size)
    if grid:
        box = _grid_box(rnd, size, grid)
    else:
        box = _place(rnd, size, rnd.randint(size // 4, size // 2))
    _draw(image, "circle", rnd.choice(list(COLOURS)), box)
    row = {
        "messages": [
            {"role": "user", "content": "<image>Where is the <ref-object>?"},
            {"role": "assistant", "content": "<bbox>"},
        ],
        "objects": {"ref": ["circle"], "bbox": [list(box)]},
    }
    return Sample(image, row, list(box))


# Each task: (random source, image size, **its options) -> one sample.
TASKS: dict[str, Callable[..., Sample]] = {
    "vqa": vqa,
    "caption": caption,
    "ocr": ocr,
    "grounding": grounding,
}


def write_task(
    task: str, folder: str | Path, n: int, *, size: int = 56, seed: int = 0, **options: Any
) -> Path:
    """`n` rows of `task` as `folder/<task>.jsonl` with images in `folder/images/`; each row also
    keeps its `answer` (ignored by training). `options` go to the task (`digits=` for ocr,
    `grid=` for grounding)."""
    if task not in TASKS:
        raise SwiftError(f"unknown synthetic task {task!r}; known: {', '.join(TASKS)}")
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    path = folder / f"{task}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            sample = TASKS[task](rnd, size, **options)
            name = f"images/{task}_{seed}_{i}.png"
            sample.image.save(folder / name)
            f.write(json.dumps({**sample.row, "images": [name], "answer": sample.answer}) + "\n")
    return path


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
