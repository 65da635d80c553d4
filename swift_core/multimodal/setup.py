"""What a pipeline needs to put images through a vision-language family, built once per run.

`vision_setup(prepared, ...)` is None for a family that takes text only, so pipelines ask it once
and never compare family names: training gets its row preparation (grounding boxes), collator and
what trains; inference and serving get the processor and the grounding codec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_core.datasets.formats import RowError
from swift_core.errors import SwiftError
from swift_core.multimodal.boxes import BoxCodec, apply_objects, box_codec
from swift_core.multimodal.freeze import FreezePlan, freeze_parts, tuning_family
from swift_core.multimodal.inputs import VisionCollator
from swift_core.multimodal.media import open_image
from swift_core.multimodal.processor import VisionProcessor

IMAGE = "image"
IMAGE_TAG = "<image>"


def takes_images(family: Any) -> bool:
    return IMAGE in tuple(getattr(family, "modalities", ()) or ())


@dataclass
class VisionSetup:
    processor: VisionProcessor
    codec: BoxCodec | None

    def prepare_rows(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows with an `<image>` tag per image (`with_image_tags`) and grounding placeholders
        written for this family (boxes need image sizes)."""
        out = []
        for n, row in enumerate(rows, 1):
            row = with_image_tags(row)
            if row.get("objects") and self.codec is not None:
                try:
                    sizes = []
                    for src in row.get("images") or ():
                        image = open_image(src)
                        sizes.append((image.size, self.processor.resize(image).size))
                    row = apply_objects(row, self.codec, sizes)
                except RowError as exc:
                    raise SwiftError(f"dataset row {n}: {exc.field}: {exc}") from None
            out.append(row)
        return out

    def check_encoded(self, encoded: Sequence[Any], max_length: int | None) -> None:
        """Refuse rows whose image placeholders `--max_length` cut (found now, not at batch time)."""
        token = self.processor.image_token_id
        for n, row in enumerate(encoded, 1):
            images = getattr(row, "images", None) or ()
            kept = sum(1 for t in row.input_ids if t == token)
            if kept != len(images):
                raise SwiftError(
                    f"encoded row {n}: --max_length {max_length} cuts into its images ({kept} of "
                    f"{len(images)} placeholders left); raise --max_length or use --truncation_strategy delete"
                )

    def collator(self, text_collator: Any) -> VisionCollator:
        return VisionCollator(text_collator, self.processor)

    def tuning_family(self, model: Any, family: Any, args: Any, adapter: bool) -> Any:
        return tuning_family(model, family, FreezePlan.from_args(args, adapter))

    def freeze(self, model: Any, args: Any, adapter: bool) -> int:
        return freeze_parts(model, FreezePlan.from_args(args, adapter))


def with_image_tags(row: dict[str, Any]) -> dict[str, Any]:
    """A row whose messages name no `<image>` gets one per image in front of its first user
    message, as ms-swift does (rows with tags already come back unchanged)."""
    images = row.get("images") or []
    messages = row.get("messages") or []
    if not images or any(IMAGE_TAG in str(m.get("content", "")) for m in messages):
        return row
    first = next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)
    if first is None:
        return row
    tagged = [dict(m) for m in messages]
    tagged[first]["content"] = IMAGE_TAG * len(images) + str(tagged[first]["content"])
    return {**row, "messages": tagged}


def processor_folders(prepared: Any) -> list[str]:
    """Where the image processor of a prepared model may be: its weights' folder, then the base
    model a full-weights checkpoint was trained from."""
    folders = [str(prepared.resolved.model)]
    checkpoint = getattr(prepared, "checkpoint", None)
    base = getattr(checkpoint, "base_model", None) if checkpoint is not None else None
    if base:
        folders.append(str(base))
    return folders


def vision_setup(
    prepared: Any, *, max_pixels: int | None = None, min_pixels: int | None = None
) -> VisionSetup | None:
    """The vision setup of a prepared model (`models.loader.PreparedModel`), None for text families.
    Bounds not given are a checkpoint's training ones (args.json), else the folder's own."""
    family = prepared.family
    if not takes_images(family):
        return None
    # A checkpoint is read at the resolution it was trained at unless told otherwise.
    trained = dict(getattr(getattr(prepared, "checkpoint", None), "args", None) or {})
    max_pixels = max_pixels or trained.get("max_pixels")
    min_pixels = min_pixels or trained.get("min_pixels")
    folders = processor_folders(prepared)
    folder = next((f for f in folders if (Path(f) / "preprocessor_config.json").is_file()), folders[0])
    processor = VisionProcessor.from_folder(
        folder, prepared.tokenizer, max_pixels=max_pixels, min_pixels=min_pixels
    )
    codec = box_codec(family.box_codec) if getattr(family, "box_codec", "") else None
    return VisionSetup(processor, codec)
