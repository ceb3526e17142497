"""Tiny random-weight models of the real classes, through the production loading path."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from models.classifier import _QUESTION_SLOT, QwenClassifier
from models.detector import RTDetrDetector
from models.images import crop_with_context, decode_photo, fit_pixel_budget
from models.loading import model_version
from models.qwen_batch import right_pad
from models.scoring import answer_log_likelihoods, choice_distribution
from models.taxonomy import load_taxonomy
from models.tiny import build_tiny_classifier, build_tiny_detector
from models.two_step import Question
from tests.fixtures.serve import TinyModels

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def detector(tiny_models: TinyModels) -> RTDetrDetector:
    # Threshold 0: a random model's scores say nothing, and every box must be checked.
    return RTDetrDetector.load(tiny_models.detector_dir, threshold=0.0, max_regions=10)


@pytest.fixture(scope="module")
def classifier(tiny_models: TinyModels) -> QwenClassifier:
    return QwenClassifier.load(
        tiny_models.classifier_dir, reason_max_new_tokens=8, max_pixels=64 * 28 * 28
    )


def _garment(size: tuple[int, int], shade: int = 0) -> Image.Image:
    image = Image.new("RGB", size, (70 + shade, 90, 140))
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


def test_torch_preprocessing_matches_the_checkpoints_image_processor(
    detector: RTDetrDetector,
) -> None:
    image = _garment((1000, 700))
    ours = detector.preprocess([image])["pixel_values"]
    reference = detector.processor(images=[image], return_tensors="pt", do_pad=False)
    assert ours.shape == reference["pixel_values"].shape
    # PIL rounds the resized pixels to 8 bits; torch does not.
    assert (ours - reference["pixel_values"]).abs().max() <= 1 / 255 + 1e-6


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
        assert result.error == ""
        assert list(result.type_distribution) == taxonomy.type_keys
        assert list(result.severity_distribution) == taxonomy.severity_keys
        for distribution in (result.type_distribution, result.final_distribution):
            assert sum(distribution.values()) == pytest.approx(1.0)
        assert sum(result.severity_distribution.values()) == pytest.approx(1.0)
        assert result.candidate_type == max(
            result.type_distribution, key=result.type_distribution.__getitem__
        )
        assert result.final_distribution[result.defect_type] == result.type_probability
        assert result.severity in taxonomy.severity_keys
        assert result.reason == ""  # reasons are generated only on request


def _naive_scores(
    classifier: QwenClassifier, crop: Image.Image, question: Question, examples: tuple = ()
) -> dict:
    """The textbook way: the whole sequence per answer (one row each), no cache."""
    crop = fit_pixel_budget(crop, classifier.max_pixels)
    text = classifier._prefix_text + classifier._question_text.replace(
        _QUESTION_SLOT, question.text
    )
    count = len(question.choices)
    images = [[*examples, crop] for _ in range(count)]
    inputs = classifier.processor(text=[text] * count, images=images, return_tensors="pt")
    answers, answer_mask = right_pad(
        [classifier._answer_tokens(choice) for choice in question.choices], pad_id=0
    )
    ids = torch.cat([inputs["input_ids"], answers], dim=1)
    with torch.inference_mode():
        logits = classifier.model(
            input_ids=ids,
            attention_mask=torch.cat([inputs["attention_mask"], answer_mask], dim=1),
            mm_token_type_ids=torch.cat(
                [inputs["mm_token_type_ids"], torch.zeros_like(answers)], dim=1
            ),
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
        ).logits
    # Right padding: every answer starts right after the same prompt length.
    start = inputs["input_ids"].shape[1]
    window = logits[:, start - 1 : start - 1 + answers.shape[1]]
    scores = answer_log_likelihoods(window, answers, answer_mask).tolist()
    return choice_distribution(question.choices, scores)


def test_batched_cached_scoring_equals_one_forward_pass_per_answer(
    classifier: QwenClassifier,
) -> None:
    # Crops of different shapes give different numbers of image tokens: real padding.
    crops = [_garment((120, 90)), _garment((60, 200), shade=40)]
    results = classifier.classify(crops)
    q = classifier.questionnaire
    for crop, result in zip(crops, results, strict=True):
        expected = _naive_scores(classifier, crop, q.step1())
        for key, probability in expected.items():
            assert result.type_distribution[key] == pytest.approx(probability, abs=1e-5)
        for key, question in q.step2(result.candidate_type):
            expected = _naive_scores(classifier, crop, question)
            if key == "severity":
                got = result.severity_distribution
            else:
                got = {"yes": next(e.probability for e in result.exceptions if e.key == key)}
            for answer, probability in got.items():
                assert probability == pytest.approx(expected[answer], abs=1e-5)


def test_step2_continues_the_crops_prefix_not_step1s_question(classifier: QwenClassifier) -> None:
    """At the tensor level: what step 2 reads is the image prefix plus its own question."""
    seen: list[tuple[int, str]] = []

    def record(module, args, kwargs):  # type: ignore[no-untyped-def]
        cache = kwargs.get("past_key_values")
        text = classifier._tokenizer.decode(kwargs["input_ids"][0], skip_special_tokens=False)
        seen.append((cache.get_seq_length() if cache is not None else 0, text))

    handle = classifier.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        classifier.classify([_garment((200, 160))])
    finally:
        handle.remove()
    # prefix, step 1 question, its answers, step 2 questions, their answers
    assert len(seen) == 5
    (_, prefix), (step1_cached, step1), _, (step2_cached, step2), _ = seen
    assert step1_cached == step2_cached  # both continue the prefix, nothing else
    assert "Decide which defect type" in step1
    assert "Decide which defect type" not in prefix + step2
    assert "<|vision_end|>" in prefix and "<|image_pad|>" not in step2


def test_scoring_is_deterministic_whatever_the_batch(classifier: QwenClassifier) -> None:
    crop = _garment((120, 90))
    alone = classifier.classify([crop])[0]
    batched = classifier.classify([_garment((300, 100), shade=60), crop])[1]
    for key, probability in alone.type_distribution.items():
        assert batched.type_distribution[key] == pytest.approx(probability, abs=1e-5)


def test_reasons_are_generated_in_a_batch_and_capped(classifier: QwenClassifier) -> None:
    crops = [_garment((120, 90)), _garment((60, 200), shade=40)]
    labels = [("stain", "minor", "stain"), ("normal", "minor", "hole")]
    reasons = classifier.explain(crops, labels, "ko")
    assert len(reasons) == 2
    for reason in reasons:
        assert isinstance(reason, str) and len(reason) <= 200
        assert "\x00" not in reason


def test_korean_prompts_classify(tiny_models: TinyModels) -> None:
    korean = QwenClassifier.load(tiny_models.classifier_dir, language="ko", max_pixels=16 * 28 * 28)
    [result] = korean.classify([_garment((100, 100))])
    assert sum(result.type_distribution.values()) == pytest.approx(1.0)
    assert korean.prompt_version == "v2+x1+t2024.1"


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
    tiny_models: TinyModels,
) -> None:
    from models.serve.deployments import Classifier

    replica = Classifier.func_or_class()  # the deployment's class, outside Ray
    config = {
        "model_dir": str(tiny_models.classifier_dir),
        "language": "en",
        "max_batch_size": 4,
        "batch_wait_timeout_s": 0.05,
    }
    asyncio.run(replica.reconfigure(config))
    champion = replica.model
    asyncio.run(replica.reconfigure({**config, "max_batch_size": 2}))  # batching only
    assert replica.model is champion
    challenger = {**config, "model_dir": str(tiny_models.challenger_classifier_dir)}
    asyncio.run(replica.reconfigure(challenger))
    assert replica.model is not champion
    assert replica.versions()["classifier_version"].startswith("challenger-classifier-")


def test_few_shot_examples_are_read_before_the_crop(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    import json

    from models.prompts import PROMPTS_DIR, load_prompts

    data = json.loads((PROMPTS_DIR / "v2.json").read_text())
    _garment((90, 90), shade=60).save(tmp_path / "hole-1.png")
    data.update(version="v2-fewshot", examples=[{"image": "hole-1.png", "answer": "hole"}])
    (tmp_path / "v2-fewshot.json").write_text(json.dumps(data))
    plain = QwenClassifier.load(tiny_models.classifier_dir, max_pixels=16 * 28 * 28)
    shown = QwenClassifier.load(
        tiny_models.classifier_dir,
        prompts=load_prompts(str(tmp_path / "v2-fewshot.json")),
        max_pixels=16 * 28 * 28,
    )
    crop = _garment((120, 90))
    assert shown.step1_tokens(crop) > plain.step1_tokens(crop) + 16  # an image and a turn more
    with_example, without = shown.classify([crop])[0], plain.classify([crop])[0]
    assert with_example.type_distribution != without.type_distribution
    example = Image.open(tmp_path / "hole-1.png").convert("RGB")
    expected = _naive_scores(shown, crop, shown.questionnaire.step1(), examples=(example,))
    for key, probability in expected.items():
        assert with_example.type_distribution[key] == pytest.approx(probability, abs=1e-5)
    assert shown.prompt_version.startswith("v2-fewshot+")
