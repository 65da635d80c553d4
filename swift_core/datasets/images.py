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
    file or `data:` URL that is empty or cannot be decoded. http(s) URLs are not fetched here."""
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
        elif isinstance(path, str) and path[:5].lower() == "data:":
            check_data_url(path, f"images[{i}]")


def check_data_url(url: str, field: str) -> None:
    """Decode a `data:` URL image fully (an inline image is the row's data like a file is)."""
    import base64
    import binascii
    import io

    head, _, payload = url.partition(",")
    if not head.lower().endswith(";base64"):
        raise RowError(field, "a data: URL image must be base64 (data:image/png;base64,...)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RowError(field, f"the data: URL is not valid base64: {exc}") from None
    if not data:
        raise RowError(field, "the data: URL image is empty (0 bytes)")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RowError(field, f"cannot decode the data: URL image: {exc}") from None


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
