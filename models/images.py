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


def shrink_for_detection(
    image: Image.Image, min_side: int
) -> tuple[Image.Image, tuple[float, float]]:
    """A copy no larger than the detector needs, and the (x, y) factors back to the original.

    The detector resizes every photo to its input size (640 px for RT-DETR) anyway, so a
    12 MP photo (36 MB of pixels) is shrunk to the smallest size that keeps both sides at
    or above `min_side` before it crosses Ray's object store. Boxes found on the copy are
    mapped back with `scale_box`, so they refer to the original's pixels.
    """
    width, height = image.size
    scale = max(min_side / width, min_side / height)
    if scale >= 1.0:
        return image, (1.0, 1.0)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return small, (width / size[0], height / size[1])


def scale_box(box: Box, factors: tuple[float, float], size: tuple[int, int]) -> Box:
    """A box found on a shrunk copy, in the original's pixels (clipped to `size`)."""
    fx, fy = factors
    width, height = size
    return Box(
        x1=min(width, max(0.0, box.x1 * fx)),
        y1=min(height, max(0.0, box.y1 * fy)),
        x2=min(width, max(0.0, box.x2 * fx)),
        y2=min(height, max(0.0, box.y2 * fy)),
    )


def whole_image_box(image: Image.Image) -> Box:
    return Box(0.0, 0.0, float(image.width), float(image.height))
