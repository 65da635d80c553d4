"""Images of engine requests (`GenerationRequest.images`): what an engine adds to a request's
prompt ids and to its `generate` call, with the same resize and widening as training.

Sources are `data:` URLs (always), PIL images (what `swift infer` opens from its own rows and
`/image PATH`), local paths (only with `--allow_local_images`) and http(s) URLs (only with
`--allow_http_images`, refused offline). Errors are raised as the engine's `error` class, so a
bad image is a 400 for the server's client, not a server failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from swift_core.multimodal.inputs import expand_image_tokens, vision_inputs
from swift_core.multimodal.media import ImageError, open_image
from swift_core.multimodal.setup import IMAGE_TAG, VisionSetup, vision_setup, with_image_tags


@dataclass
class EngineVision:
    setup: VisionSetup
    allow_local: bool = False
    allow_http: bool = False

    def images(self, request: Any, error: type[Exception]) -> list[Any]:
        try:
            return [
                open_image(src, allow_local=self.allow_local, allow_http=self.allow_http)
                for src in request.images or ()
            ]
        except ImageError as exc:
            raise error(str(exc)) from None


def engine_vision(prepared: Any, options: Any = None) -> EngineVision | None:
    """The image side of an engine's model (None for text-only families); `options` holds
    `ImageOptions` fields (any object with them; None: the defaults)."""
    setup = vision_setup(
        prepared,
        max_pixels=getattr(options, "max_pixels", None),
        min_pixels=getattr(options, "min_pixels", None),
    )
    if setup is None:
        return None
    return EngineVision(
        setup,
        allow_local=bool(getattr(options, "allow_local_images", False)),
        allow_http=bool(getattr(options, "allow_http_images", False)),
    )


def row_images(
    row: dict[str, Any], messages: list[dict[str, Any]], error: type[Exception]
) -> tuple[list[dict[str, Any]], list[Any]]:
    """(prompt messages with an `<image>` tag per image, the images opened) of a data row that
    `swift infer` answers: its own files, so local paths are read."""
    tagged = with_image_tags({"messages": messages, "images": row.get("images") or []})
    try:
        opened = [open_image(src) for src in row.get("images") or ()]
    except ImageError as exc:
        raise error(str(exc)) from None
    return tagged["messages"], opened


def check_images(vision: EngineVision | None, request: Any, error: type[Exception]) -> None:
    """A request with images for a model that takes none is refused before any work."""
    if getattr(request, "images", None) and vision is None:
        raise error("this model takes text only: the request has images (serve a vision-language model)")
    if getattr(request, "images", None) and request.messages is None:
        raise error("images go with chat messages, not with a completion prompt")
    if vision is not None and request.messages is not None:
        tags = sum(str(m.get("content") or "").count(IMAGE_TAG) for m in request.messages)
        if tags != len(request.images or ()):
            raise error(
                f"the messages have {tags} <image> tag(s) but the request has {len(request.images or ())} image(s)"
            )


def widen_prompt(
    vision: EngineVision | None, request: Any, ids: list[int], error: type[Exception]
) -> list[int]:
    """`ids` with each image placeholder widened to that image's visual tokens."""
    if vision is None or not getattr(request, "images", None):
        return ids
    processor = vision.setup.processor
    batch = processor(vision.images(request, error))
    try:
        widened, _ = expand_image_tokens(ids, None, batch.token_counts, processor.image_token_id)
    except Exception as exc:  # placeholders and images disagree: the request's mistake
        raise error(f"{exc}; put one <image> (or image_url part) per image") from None
    return widened


def generate_inputs(vision: EngineVision | None, jobs: Sequence[Any], input_ids: Any) -> dict[str, Any]:
    """What `generate` takes next to a batch's `input_ids` (one row per choice of each job, in
    order): every image of every row, its grid and the image-token mask. Empty without images."""
    if vision is None or not any(getattr(job.request, "images", None) for job in jobs):
        return {}
    images: list[Any] = []
    for job in jobs:
        opened = vision.images(job.request, ValueError)
        images += opened * job.request.n
    batch = vision.setup.processor(images)
    device = input_ids.device
    out = vision_inputs(batch, input_ids, vision.setup.processor.image_token_id)
    return {k: v.to(device) for k, v in out.items()}
