"""Upload validation judges content, not names, and explains every refusal."""

import io

import pytest
from PIL import Image

from app.inspections.validation import InvalidImage, check_image

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 4_000_000}


def encode(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def test_a_good_jpeg_is_accepted_with_hash_and_size():
    data = encode(Image.new("RGB", (64, 48), "white"), "JPEG")
    checked = check_image(data, filename="a.txt", **LIMITS)  # the name does not matter
    assert (checked.width, checked.height, checked.content_type) == (64, 48, "image/jpeg")
    assert len(checked.content_hash) == 64
    assert checked.extension == "jpg"


def test_exif_rotation_gives_upright_size():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°
    data = encode(Image.new("RGB", (64, 48)), "JPEG", exif=exif)
    checked = check_image(data, filename="rot.jpg", **LIMITS)
    assert (checked.width, checked.height) == (48, 64)


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"%PDF-1.4 not an image at all" * 10, 415, "not an image"),
        (b"GIF89a" + b"\x00" * 100, 415, "not an image"),
        (b"x" * 1_000_001, 413, "limit is 1 MB"),
    ],
)
def test_refusals_name_the_problem(data, status, words):
    with pytest.raises(InvalidImage) as err:
        check_image(data, filename="photo.jpg", **LIMITS)
    assert err.value.status == status
    assert words in str(err.value)


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (8, 8), (4000, 3)])
def test_a_jpeg_of_any_size_is_checked_at_full_size(size):
    """The check decodes JPEGs at 1/8 scale; a side under 8 pixels once asked for 0 (a 500)."""
    checked = check_image(encode(Image.new("RGB", size, "white"), "JPEG"), filename="a", **LIMITS)
    assert (checked.width, checked.height) == size


def test_a_truncated_image_is_refused():
    data = encode(Image.effect_noise((128, 128), 50).convert("RGB"), "JPEG")
    with pytest.raises(InvalidImage, match="damaged or truncated"):
        check_image(data[: len(data) // 2], filename="cut.jpg", **LIMITS)


def test_a_decompression_bomb_is_refused_before_decoding():
    data = encode(Image.new("L", (3000, 3000)), "PNG")  # 9 MP, a few KB compressed
    assert len(data) < LIMITS["max_bytes"]
    with pytest.raises(InvalidImage, match="MP") as err:
        check_image(data, filename="bomb.png", **LIMITS)
    assert err.value.status == 413


def test_gif_is_refused_by_format():
    data = encode(Image.new("RGB", (8, 8)), "GIF")
    with pytest.raises(InvalidImage, match="GIF"):
        check_image(data, filename="x.gif", **LIMITS)
