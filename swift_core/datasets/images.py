"""Images of a row, checked when the row is: the model family must take images, and every local
image must open.

Why at load time: a row that reaches the template with images a text-only family cannot encode
trains on the literal text `<image>`, and an empty or corrupt file fails (or is silently skipped)
hours later in a data loader worker. Both are the user's data, so they are bad rows with a file,
line and field like any other.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from swift_core.datasets.formats import RowError

IMAGE = "image"


def check_row_images(row: dict[str, Any], modalities: Sequence[str], family: str = "") -> None:
    """Raise `RowError` for a row with images when `modalities` lacks "image", or for an image
    file that is empty or cannot be decoded. URLs are not fetched here."""
    images = row.get("images") or []
    if not images:
        return
    if IMAGE not in modalities:
        who = f"model family {family!r}" if family else "this model"
        raise RowError(
            "images",
            f"the row has {len(images)} image(s), but {who} takes {' and '.join(modalities) or 'text'} "
            "only; use a multimodal model or drop the images",
        )
    for i, path in enumerate(images):
        if isinstance(path, str) and os.path.isabs(path):
            check_image_file(path, f"images[{i}]")


def check_image_file(path: str, field: str) -> None:
    """Open the image fully (Pillow's verify reads and checks it without keeping the pixels)."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise RowError(field, f"cannot read image {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise RowError(field, f"image {path} is empty (0 bytes)")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RowError(field, f"cannot decode image {path}: {exc}") from None
