"""A vision-language model folder's image processor, loaded without torchvision.

transformers 5's `AutoImageProcessor`/`AutoProcessor` on a Qwen2-VL folder ask for torchvision
(the fast image backend and the video processor); the Pillow backend of the same processor
(`Qwen2VLImageProcessorPil`) does not, and reads the same `preprocessor_config.json`. So a folder's
processor is built from the class its config names, Pillow backend first. Images are resized by
`resize.resize_image` first (the processor runs with `do_resize=False`), so the size the model sees
is known to the grounding codecs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_core.errors import SwiftError
from swift_core.multimodal.resize import ResizeSpec, resize_image

IMAGE_PAD = "<|image_pad|>"


@dataclass
class VisionBatch:
    """The model inputs of some images, with how many placeholder tokens each one takes."""

    pixel_values: Any  # (sum of patches, channels * temporal * patch * patch)
    image_grid_thw: Any  # (images, 3)
    token_counts: list[int]
    sizes: list[tuple[int, int]]  # (width, height) each image was resized to


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SwiftError(f"cannot read {path}: {exc}") from None


def _processor_class(name: str) -> Any:
    import transformers

    for candidate in (f"{name}Pil", name.removesuffix("Fast") + "Pil", name):
        cls = getattr(transformers, candidate, None)
        if cls is not None:
            return cls
    raise SwiftError(f"unknown image processor {name!r} in preprocessor_config.json")


class VisionProcessor:
    """Resize, patchify and count the visual tokens of images for one model folder."""

    def __init__(self, image_processor: Any, image_token_id: int, spec: ResizeSpec):
        self.image_processor = image_processor
        self.image_token_id = image_token_id
        self.spec = spec
        self.merge = int(getattr(image_processor, "merge_size", 2))

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        tokenizer: Any = None,
        *,
        max_pixels: int | None = None,
        min_pixels: int | None = None,
    ) -> VisionProcessor:
        """The processor of `folder` (its preprocessor_config.json), bounds from the arguments or
        else the folder's own (`size.shortest_edge`/`longest_edge`, as Qwen2-VL stores them)."""
        folder = Path(folder)
        config_path = folder / "preprocessor_config.json"
        if not config_path.is_file():
            raise SwiftError(
                f"{folder} has no preprocessor_config.json: a vision-language model folder needs its image processor"
            )
        name = _read_json(config_path).get("image_processor_type") or "Qwen2VLImageProcessor"
        processor = _processor_class(name).from_pretrained(str(folder))
        size = dict(getattr(processor, "size", None) or {})
        low = min_pixels or size.get("shortest_edge") or getattr(processor, "min_pixels", None) or 56 * 56
        high = (
            max_pixels or size.get("longest_edge") or getattr(processor, "max_pixels", None) or 28 * 28 * 1280
        )
        factor = int(getattr(processor, "patch_size", 14)) * int(getattr(processor, "merge_size", 2))
        spec = ResizeSpec(int(low), int(high), factor)
        config = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
        token_id = config.get("image_token_id")
        if token_id is None and tokenizer is not None:
            token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        if token_id is None:
            raise SwiftError(f"{folder}: config.json names no image_token_id")
        return cls(processor, int(token_id), spec)

    def resize(self, image: Any) -> Any:
        return resize_image(image, self.spec)

    def __call__(self, images: list[Any]) -> VisionBatch:
        """`images` (PIL, RGB) resized and turned into patches."""
        resized = [self.resize(image) for image in images]
        out = self.image_processor(images=resized, do_resize=False, return_tensors="pt")
        grid = out["image_grid_thw"]
        counts = [int(row.prod()) // (self.merge * self.merge) for row in grid]
        return VisionBatch(out["pixel_values"], grid, counts, [im.size for im in resized])
