"""The image options of an engine (flags of `swift infer` and `swift deploy` while the engine is
installed). Light on purpose: `swift_core.builtin.engines` imports it at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from swift_core.config.arguments import arg


@dataclass(kw_only=True)
class ImageOptions:
    """How requests' images are read and resized (vision-language models only)."""

    max_pixels: int | None = arg(
        None, help="Largest image area (pixels) after resizing; keep it as in training. Default: the model's"
    )
    min_pixels: int | None = arg(
        None, help="Smallest image area (pixels) after resizing. Default: the model's"
    )
    allow_local_images: bool = arg(
        False, help="Requests may name image files on the server (data: URLs always work)"
    )
    allow_http_images: bool = arg(
        False, help="Requests may give http(s) image URLs, fetched by the server (refused offline)"
    )
