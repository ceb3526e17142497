"""The composition of one inspection, with fake models: boxes, cold start, failures, batching."""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models import pipeline
from models.contracts import Box, Classification, Detection, RegionToExplain

UPRIGHT_SIZE = (1600, 1200)
BLOB = Box(1000, 300, 1200, 450)  # where the defect is on the garment as an inspector sees it
OPTIONS = pipeline.PipelineOptions()
CLASSIFIED = Classification("stain", 0.9, "minor", 0.8, {"stain": 0.9, "normal": 0.1})
VERSIONS = {"classifier_version": "cls-1", "prompt_version": "v2"}


def photo_as_stored(orientation: int) -> bytes:
    """A JPEG whose pixels are rotated as a camera stores them, with the EXIF flag to undo it."""
    upright = Image.new("RGB", UPRIGHT_SIZE, (200, 200, 200))
    ImageDraw.Draw(upright).rectangle((BLOB.x1, BLOB.y1, BLOB.x2 - 1, BLOB.y2 - 1), fill=(0, 0, 0))
    stored = {
        1: upright,
        3: upright.transpose(Image.Transpose.ROTATE_180),
        6: upright.transpose(Image.Transpose.ROTATE_90),
        8: upright.transpose(Image.Transpose.ROTATE_270),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


class DarkSpotDetector:
    """Finds the dark blob in whatever image it is given, in that image's pixels."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    async def __call__(self, image: Image.Image) -> tuple[list[Detection], str, float]:
        self.sizes.append(image.size)
        dark = np.argwhere(np.asarray(image.convert("L")) < 60)
        (y1, x1), (y2, x2) = dark.min(axis=0), dark.max(axis=0) + 1
        return [Detection(Box(float(x1), float(y1), float(x2), float(y2)), 0.9)], "det-1", 7.0


def fake_models(detect=None, crops: list | None = None) -> pipeline.ArmModels:  # type: ignore[no-untyped-def]
    async def classify(crop: Image.Image):  # type: ignore[no-untyped-def]
        if crops is not None:
            crops.append(crop)
        return CLASSIFIED, VERSIONS, 3.0

    async def versions() -> dict[str, str]:
        return VERSIONS

    async def explain(crop: Image.Image, label: tuple[str, str, str], language: str) -> str:
        return f"{label[0]} {crop.size[0]}x{crop.size[1]} {language}"

    return pipeline.ArmModels(detect, classify, versions, explain)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_boxes_are_in_the_upright_originals_pixels_under_exif_rotation_and_resizing(
    orientation: int,
) -> None:
    detector = DarkSpotDetector()
    result = asyncio.run(
        pipeline.inspect([photo_as_stored(orientation)], fake_models(detector), OPTIONS, "champion")
    )
    assert min(detector.sizes[0]) == 640  # the detector got a small copy, not 1.9 MP
    [region] = result.regions
    for found, true in zip(
        (region.box.x1, region.box.y1, region.box.x2, region.box.y2),
        (BLOB.x1, BLOB.y1, BLOB.x2, BLOB.y2),
        strict=True,
    ):
        assert found == pytest.approx(true, abs=6)  # 2.5x shrink plus JPEG edges
    assert (result.detector_version, result.classifier_version, result.arm) == (
        "det-1",
        "cls-1",
        "champion",
    )
    assert {"decode_ms", "detect_ms", "classify_ms", "total_ms"} <= set(result.timings)
    # What the models said they computed, apart from the wait around it.
    assert (result.timings["detect_model_ms"], result.timings["classify_model_ms"]) == (7.0, 3.0)


def test_cold_start_classifies_each_whole_photo() -> None:
    crops: list[Image.Image] = []
    photos = [photo_as_stored(1), photo_as_stored(6)]
    result = asyncio.run(pipeline.inspect(photos, fake_models(None, crops), OPTIONS, "champion"))
    assert result.classifier_only and result.detector_version == ""
    assert [r.photo_index for r in result.regions] == [0, 1]
    assert all(r.whole_image and r.detector_score == 1.0 for r in result.regions)
    assert result.regions[0].box == Box(0, 0, 1600, 1200)
    # Whole photos reach the classifier within its pixel budget.
    assert all(c.width * c.height <= OPTIONS.max_pixels * 1.01 for c in crops)


def test_a_box_too_small_to_judge_fails_that_region_without_asking_the_classifier() -> None:
    async def detect(image: Image.Image) -> tuple[list[Detection], str, float]:
        found = [Detection(Box(10, 10, 12, 40), 0.8), Detection(Box(50, 50, 90, 90), 0.7)]
        return found, "d", 1.0

    crops: list[Image.Image] = []
    result = asyncio.run(
        pipeline.inspect([photo_as_stored(1)], fake_models(detect, crops), OPTIONS, "challenger")
    )
    small, fine = result.regions
    assert "crop too small" in small.classification.error
    assert fine.classification == CLASSIFIED and len(crops) == 1
    assert result.arm == "challenger"


def test_explain_crops_each_region_and_passes_the_language() -> None:
    regions = [
        RegionToExplain(0, Box(100, 100, 300, 200), "stain", "minor"),
        RegionToExplain(1, Box(0, 0, 50, 50), "normal", "minor", "hole"),
    ]
    photos = [photo_as_stored(1), photo_as_stored(1)]
    reasons = asyncio.run(pipeline.explain(photos, regions, fake_models(), OPTIONS, "ko"))
    assert reasons[0].startswith("stain 260x130") and reasons[0].endswith("ko")
    assert reasons[1].startswith("normal")
    with pytest.raises(ValueError, match="photo"):
        asyncio.run(pipeline.explain(photos[:1], regions, fake_models(), OPTIONS, "en"))


class CountingModel:
    version, prompt_version = "m-1", "v2"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def classify(self, crops: list[Image.Image]) -> list[Classification]:
        self.batches.append(len(crops))
        time.sleep(0.02)  # the batch's compute, which every call in it reports
        return [CLASSIFIED for _ in crops]


def test_in_process_models_batch_the_calls_made_together() -> None:
    model = CountingModel()
    models = pipeline.in_process(None, model)

    async def run() -> list:
        crops = [Image.new("RGB", (32, 32)) for _ in range(5)]
        return await asyncio.gather(*(models.classify(crop) for crop in crops))

    answers = asyncio.run(run())
    assert model.batches == [5]
    assert answers[0][:2] == (CLASSIFIED, {"classifier_version": "m-1", "prompt_version": "v2"})
    assert len({ms for _, _, ms in answers}) == 1 and answers[0][2] >= 20
