"""The one resize function: training, inference, serving and evaluation all call `resize_image`.

Why ours and not the image processor's own resize: grounding boxes must be converted with the
size the model actually saw (Qwen2.5-VL writes pixels of the resized image), so the size has to be
known outside the processor and be the same everywhere. The arithmetic is transformers' own
`smart_resize` (both sides multiples of patch size x merge size, the area within
[min_pixels, max_pixels], the aspect ratio kept); the processor then runs with `do_resize=False`.
Memory grows with the number of visual tokens, `area / (patch * merge)^2`: `--max_pixels` is the
knob that bounds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swift_core.errors import SwiftError


@dataclass(frozen=True)
class ResizeSpec:
    """Bounds of an image's area in pixels and the multiple both sides are rounded to."""

    min_pixels: int
    max_pixels: int
    factor: int = 28  # patch size 14 x spatial merge 2 (Qwen2-VL, Qwen2.5-VL)

    def __post_init__(self) -> None:
        if self.min_pixels <= 0 or self.max_pixels <= 0:
            raise SwiftError(
                f"--min_pixels and --max_pixels must be positive, got {self.min_pixels}, {self.max_pixels}"
            )
        if self.min_pixels > self.max_pixels:
            raise SwiftError(f"--min_pixels {self.min_pixels} is larger than --max_pixels {self.max_pixels}")
        if self.max_pixels < self.factor * self.factor:
            raise SwiftError(
                f"--max_pixels {self.max_pixels} is below one visual token ({self.factor}x{self.factor} = "
                f"{self.factor * self.factor} pixels)"
            )


def resized_size(width: int, height: int, spec: ResizeSpec) -> tuple[int, int]:
    """(width, height) an image of this size is resized to."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    try:
        h, w = smart_resize(
            height, width, factor=spec.factor, min_pixels=spec.min_pixels, max_pixels=spec.max_pixels
        )
    except ValueError as exc:  # an aspect ratio above 200
        raise SwiftError(f"image of {width}x{height} cannot be resized: {exc}") from None
    return w, h


def resize_image(image: Any, spec: ResizeSpec) -> Any:
    """`image` (PIL) at `resized_size` (bicubic, as the Qwen2-VL processor resamples)."""
    from PIL import Image

    size = resized_size(*image.size, spec)
    return image if size == image.size else image.resize(size, Image.Resampling.BICUBIC)
