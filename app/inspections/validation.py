"""Upload validation: an image is judged by its content, never by its name."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# Formats a camera station or a phone produces; anything else is refused.
ALLOWED_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
# EXIF orientations that swap width and height once the photo is shown upright.
_ROTATED = {5, 6, 7, 8}


class InvalidImage(ValueError):
    """An upload we refuse; `status` is the HTTP status, the message says why in plain words."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    content_hash: str
    content_type: str
    extension: str
    width: int  # upright, after EXIF rotation: the coordinates regions are given in
    height: int


def check_image(data: bytes, *, filename: str, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Validate one uploaded photo or raise InvalidImage."""
    name = filename or "the image"
    if not data:
        raise InvalidImage(f"{name} is empty")
    if len(data) > max_bytes:
        raise InvalidImage(
            f"{name} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB", 413
        )
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is stricter than PIL's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise InvalidImage(
            f"{name} is not an image Loupe can read (JPEG, PNG, WebP, BMP, TIFF)", 415
        ) from exc
    if image.format not in ALLOWED_FORMATS:
        raise InvalidImage(
            f"{name} is a {image.format} file; send JPEG, PNG, WebP, BMP or TIFF", 415
        )
    width, height = image.size
    # Checked from the header, before decoding: a decompression bomb never gets decoded.
    if width * height > max_pixels:
        raise InvalidImage(
            f"{name} has {width}x{height} pixels ({width * height / 1e6:.1f} MP); "
            f"the limit is {max_pixels / 1e6:.0f} MP",
            413,
        )
    if image.format == "JPEG":
        # Decode at 1/8 scale: libjpeg still reads every entropy-coded block, so a damaged
        # or truncated photo is refused as before, but skips most of the inverse DCT and
        # colour conversion, about half the cost (bench/README.md, the station's upload).
        # `width, height` above stay the full size. At least 1x1: a photo under 8 pixels a
        # side asked for 0x0 and failed with a 500.
        image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"{name} is damaged or truncated: {exc}") from exc
    if image.getexif().get(0x0112) in _ROTATED:
        width, height = height, width
    content_type = ALLOWED_FORMATS[image.format]
    return CheckedImage(
        data=data,
        content_hash=hashlib.sha256(data).hexdigest(),
        content_type=content_type,
        extension=content_type.split("/")[1].replace("jpeg", "jpg"),
        width=width,
        height=height,
    )
