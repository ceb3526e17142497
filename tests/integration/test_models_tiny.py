"""Tiny random-weight models of the real classes, through the production loading path."""

import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from models.classifier import QwenClassifier
from models.detector import RTDetrDetector
from models.images import crop_with_context, decode_photo
from models.loading import model_version
from models.prompts import load_prompts
from models.taxonomy import load_taxonomy
from models.tiny import build_tiny_classifier, build_tiny_detector
from tests.fixtures.serve import TinyModels

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def detector(tiny_models: TinyModels) -> RTDetrDetector:
    # Threshold 0: a random model's scores say nothing, and every box must be checked.
    return RTDetrDetector(tiny_models.detector_dir, threshold=0.0, max_regions=10)


@pytest.fixture(scope="module")
def classifier(tiny_models: TinyModels) -> QwenClassifier:
    return QwenClassifier(
        tiny_models.classifier_dir,
        load_taxonomy(),
        load_prompts("v1"),
        reason_max_new_tokens=8,
        max_pixels=64 * 28 * 28,
    )


def _garment(size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, (70, 90, 140))
    ImageDraw.Draw(image).ellipse(
        (size[0] // 3, size[1] // 3, size[0] // 2, size[1] // 2), fill=(120, 80, 40)
    )
    return image


def _rotated_jpeg(size: tuple[int, int]) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    buffer = io.BytesIO()
    _garment(size).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_detections_lie_within_each_original_image(detector: RTDetrDetector) -> None:
    rotated = decode_photo(_rotated_jpeg((480, 320)))
    assert rotated.size == (320, 480)
    images = [rotated, _garment((900, 300)), _garment((64, 64))]
    results = detector.detect(images)
    assert len(results) == len(images)
    for image, detections in zip(images, results, strict=True):
        assert 0 < len(detections) <= 10
        scores = [d.score for d in detections]
        assert scores == sorted(scores, reverse=True)
        for detection in detections:
            box = detection.box
            assert 0 <= box.x1 < box.x2 <= image.width
            assert 0 <= box.y1 < box.y2 <= image.height
    assert detector.detect([]) == []


def test_classification_distributions_are_probabilities(
    detector: RTDetrDetector, classifier: QwenClassifier
) -> None:
    image = _garment((640, 360))
    detections = detector.detect([image])[0][:2]
    crops = [crop_with_context(image, d.box) for d in detections] + [Image.new("RGB", (5, 3))]
    results = classifier.classify(crops)
    taxonomy = load_taxonomy()
    assert len(results) == len(crops)
    for result in results:
        assert list(result.type_distribution) == taxonomy.type_keys
        assert list(result.severity_distribution) == taxonomy.severity_keys
        assert sum(result.type_distribution.values()) == pytest.approx(1.0)
        assert sum(result.severity_distribution.values()) == pytest.approx(1.0)
        assert result.type_probability == max(result.type_distribution.values())
        assert result.type_distribution[result.defect_type] == result.type_probability
        assert result.severity in taxonomy.severity_keys
        assert isinstance(result.reason, str) and len(result.reason) <= 200


def test_scoring_is_deterministic_and_reason_is_optional(classifier: QwenClassifier) -> None:
    crop = _garment((120, 90))
    first = classifier.classify([crop], with_reason=False)[0]
    again = classifier.classify([crop], with_reason=False)[0]
    assert first == again and first.reason == ""
    choices = classifier.score_choices(crop, "Is this torn? Answer yes or no.", ["yes", "no"])
    assert set(choices) == {"yes", "no"} and sum(choices.values()) == pytest.approx(1.0)


def test_korean_prompts_classify(tiny_models: TinyModels) -> None:
    korean = QwenClassifier(
        tiny_models.classifier_dir, language="ko", reason_max_new_tokens=4, max_pixels=16 * 28 * 28
    )
    [result] = korean.classify([_garment((100, 100))])
    assert sum(result.type_distribution.values()) == pytest.approx(1.0)


def test_tiny_builds_are_deterministic_and_idempotent(
    tmp_path: Path, tiny_models: TinyModels
) -> None:
    detector_dir = build_tiny_detector(tmp_path / "detector")
    classifier_dir = build_tiny_classifier(tmp_path / "classifier")
    assert model_version(detector_dir) == model_version(tiny_models.detector_dir)
    assert model_version(classifier_dir) == model_version(tiny_models.classifier_dir)
    weights = classifier_dir / "model.safetensors"
    os.utime(weights, (0, 0))
    build_tiny_classifier(classifier_dir)  # complete already: left as it is
    assert weights.stat().st_mtime == 0


def test_reconfigure_swaps_the_model_only_when_its_settings_change(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    from models.serve.app import Classifier

    replica = Classifier.func_or_class()  # the deployment's class, outside Ray
    config = {
        "model_dir": str(tiny_models.classifier_dir),
        "language": "en",
        "max_batch_size": 4,
        "batch_wait_timeout_s": 0.05,
    }
    replica.reconfigure(config)
    champion = replica.model
    replica.reconfigure({**config, "max_batch_size": 2})  # batching only: same model
    assert replica.model is champion
    challenger_dir = build_tiny_classifier(tmp_path / "classifier-v2")
    replica.reconfigure({**config, "model_dir": str(challenger_dir)})
    assert replica.model is not champion
    assert replica.versions()["classifier_version"].startswith("classifier-v2-")
