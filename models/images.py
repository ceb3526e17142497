"""Pure PIL helpers shared by the serve app and the classifier: decode, crop, resize.

Kept free of torch so that they are unit-testable in milliseconds.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageOps, UnidentifiedImageError

from models.contracts import Box

# Qwen2.5-VL turns each 28x28 pixel square into one visual token (14 px patches merged
# 2x2), so pixel budgets are counted in multiples of 28.
QWEN_TOKEN_PIXELS = 28
DEFAULT_MAX_PIXELS = 256 * QWEN_TOKEN_PIXELS * QWEN_TOKEN_PIXELS


class UnreadableImage(ValueError):
    """The bytes are not an image PIL can decode."""


def decode_photo(data: bytes) -> Image.Image:
    """Decodes a photo upright (EXIF orientation applied) and in RGB, as the models expect."""
    try:
        stored = Image.open(io.BytesIO(data))
        stored.load()
        # Cameras store portrait shots as rotated landscape pixels plus an EXIF flag;
        # boxes must refer to what an inspector sees, so rotate before anything else.
        upright = ImageOps.exif_transpose(stored)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise UnreadableImage(f"cannot decode image: {exc}") from exc
    return upright.convert("RGB")


def crop_with_context(
    image: Image.Image, box: Box, context: float = 0.15, min_context_px: int = 8
) -> Image.Image:
    """Crops a region with some surrounding fabric: a defect is judged against its context."""
    pad_x = max(min_context_px, (box.x2 - box.x1) * context)
    pad_y = max(min_context_px, (box.y2 - box.y1) * context)
    left = max(0, math.floor(box.x1 - pad_x))
    top = max(0, math.floor(box.y1 - pad_y))
    right = min(image.width, math.ceil(box.x2 + pad_x))
    bottom = min(image.height, math.ceil(box.y2 + pad_y))
    # A degenerate box still yields at least one pixel so that downstream resizing works.
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    return image.crop((left, top, right, bottom))


def fit_pixel_budget(
    image: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = QWEN_TOKEN_PIXELS
) -> Image.Image:
    """Scales an image (keeping its aspect ratio) to at most max_pixels and min_side a side.

    The VLM's cost grows with its number of visual tokens, so large crops are shrunk;
    tiny crops are enlarged because the vision encoder needs at least one 28 px token.
    """
    width, height = image.size
    scale = 1.0
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
    scale = max(scale, min_side / width, min_side / height)
    if scale == 1.0:
        return image
    size = (max(min_side, round(width * scale)), max(min_side, round(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)
