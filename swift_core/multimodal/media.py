"""Opening an image a row or a request names: a local path, a `data:` URL, or (when allowed) an
http(s) URL.

Why one function: training rows, `swift infer` rows, `/image PATH` in chat and the server's
`image_url` parts all name images the same ways, and must fail the same way (a clear one-line
error) on an empty, undecodable, missing or unreachable image.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from typing import Any

from swift_core.errors import SwiftError

_DATA_URL = re.compile(r"^data:(?P<mime>[\w/+.-]*)?(?P<params>(;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I)


class ImageError(SwiftError):
    """An image that cannot be used: the message names it and why."""


def is_data_url(source: str) -> bool:
    return bool(_DATA_URL.match(source))


def is_http_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def data_url_bytes(source: str) -> bytes:
    """The bytes a `data:` URL holds (base64 or percent-encoded)."""
    match = _DATA_URL.match(source)
    if match is None:
        raise ImageError(f"not a data: URL: {source[:40]}...")
    payload = source[match.end() :]
    if match.group("b64"):
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ImageError(f"data: URL is not valid base64: {exc}") from None
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(payload)


def _decode(data: bytes, what: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"image {what} is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot decode image {what}: {exc}") from None
    return image.convert("RGB")


def _fetch(url: str, timeout: float) -> bytes:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("SWIFT_OFFLINE") == "1":
        raise ImageError(f"cannot fetch image {url}: offline (HF_HUB_OFFLINE/SWIFT_OFFLINE is set)")
    from urllib.error import URLError
    from urllib.request import urlopen

    try:
        with urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only, checked above)
            return response.read()
    except (URLError, OSError, ValueError) as exc:
        raise ImageError(f"cannot fetch image {url}: {getattr(exc, 'reason', exc)}") from None


def open_image(
    source: Any,
    *,
    allow_local: bool = True,
    allow_http: bool = False,
    base_dir: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """`source` as an RGB PIL image. `source` may already be a PIL image; a path is read only with
    `allow_local` (relative ones against `base_dir`), an http(s) URL fetched only with `allow_http`."""
    from PIL import Image

    if isinstance(source, Image.Image):
        return source.convert("RGB")
    if isinstance(source, dict):  # {"url": ...} or a hub Image feature {"path", "bytes"}
        if source.get("bytes"):
            return _decode(source["bytes"], "bytes")
        source = source.get("url") or source.get("path") or ""
    if not isinstance(source, str) or not source:
        raise ImageError(f"expected an image path or URL, got {type(source).__name__}")
    if is_data_url(source):
        return _decode(data_url_bytes(source), "from a data: URL")
    if is_http_url(source):
        if not allow_http:
            raise ImageError(f"image {source}: http(s) images are not allowed here (see --allow_http_images)")
        return _decode(_fetch(source, timeout), source)
    if source.startswith("file://"):
        source = source[len("file://") :]
    if not allow_local:
        raise ImageError("local image paths are not allowed here (see --allow_local_images); use a data: URL")
    path = os.path.expanduser(source)
    if not os.path.isabs(path) and base_dir:
        path = os.path.join(base_dir, path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc.strerror or exc}") from None
    return _decode(data, path)


def to_data_url(image: Any, fmt: str = "PNG") -> str:
    """A PIL image as a `data:` URL (what an OpenAI client sends)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
