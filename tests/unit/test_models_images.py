"""Photo decoding (EXIF, RGB), crops with context, and the VLM pixel budget."""

import io

import pytest
from PIL import Image

from models.contracts import Box
from models.images import (
    UnreadableImage,
    crop_with_context,
    decode_photo,
    fit_pixel_budget,
)


def _jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_decode_applies_exif_rotation_and_converts_to_rgb() -> None:
    # Orientation 6: the camera stored a portrait shot as landscape pixels.
    photo = decode_photo(_jpeg(Image.new("L", (60, 40), 128), orientation=6))
    assert photo.size == (40, 60)
    assert photo.mode == "RGB"


def test_decode_rejects_bytes_that_are_not_an_image() -> None:
    with pytest.raises(UnreadableImage):
        decode_photo(b"definitely not a jpeg")


def test_crop_adds_context_and_stays_inside_the_image() -> None:
    image = Image.new("RGB", (100, 80))
    crop = crop_with_context(image, Box(40, 30, 60, 50), context=0.5, min_context_px=0)
    assert crop.size == (40, 40)  # 20 px box + 10 px each side
    corner = crop_with_context(image, Box(0, 0, 10, 10), context=0.5, min_context_px=8)
    assert corner.size == (18, 18)  # clipped at the top-left edges


def test_crop_of_a_degenerate_box_is_still_an_image() -> None:
    image = Image.new("RGB", (10, 10))
    crop = crop_with_context(image, Box(10, 10, 10, 10), context=0.0, min_context_px=0)
    assert crop.width >= 1 and crop.height >= 1


def test_pixel_budget_shrinks_large_and_grows_tiny_images() -> None:
    large = fit_pixel_budget(Image.new("RGB", (2000, 1000)), max_pixels=200_000)
    assert large.width * large.height <= 200_000 * 1.01
    assert large.width / large.height == pytest.approx(2.0, rel=0.01)
    tiny = fit_pixel_budget(Image.new("RGB", (10, 5)), max_pixels=200_000, min_side=28)
    assert min(tiny.size) >= 28
    same = Image.new("RGB", (100, 100))
    assert fit_pixel_budget(same, max_pixels=200_000) is same
