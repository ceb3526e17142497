"""Detector post-processing on plain tensors: scaling, clipping, threshold, order, cap."""

from types import SimpleNamespace

import pytest
import torch

from models.detector import RTDetrDetector, decode_detections


def _logit(probability: float) -> float:
    return float(torch.logit(torch.tensor(probability)))


def test_boxes_scale_to_original_pixels_of_a_non_square_image() -> None:
    logits = torch.tensor([[_logit(0.9)]])
    boxes = torch.tensor([[0.5, 0.25, 0.2, 0.1]])  # cx, cy, w, h, normalised
    [detection] = decode_detections(logits, boxes, (200, 400), threshold=0.25, max_regions=5)
    box = detection.box
    assert (box.x1, box.y1, box.x2, box.y2) == pytest.approx((160, 40, 240, 60))
    assert detection.score == pytest.approx(0.9)


def test_boxes_are_clipped_to_the_image_and_empty_ones_dropped() -> None:
    logits = torch.tensor([[_logit(0.8)], [_logit(0.8)]])
    boxes = torch.tensor(
        [
            [0.0, 1.0, 0.4, 0.4],  # straddles the bottom-left corner
            [1.5, 0.5, 0.2, 0.2],
        ]
    )  # entirely right of the image
    detections = decode_detections(logits, boxes, (100, 50), threshold=0.25, max_regions=5)
    assert len(detections) == 1
    box = detections[0].box
    assert (box.x1, box.y1, box.x2, box.y2) == pytest.approx((0, 80, 10, 100))


def test_threshold_order_and_cap() -> None:
    probabilities = [0.3, 0.9, 0.1, 0.6, 0.25]
    logits = torch.tensor([[_logit(p)] for p in probabilities])
    boxes = torch.tensor([[0.5, 0.5, 0.1, 0.1]] * len(probabilities))
    detections = decode_detections(logits, boxes, (10, 10), threshold=0.25, max_regions=3)
    assert [round(d.score, 3) for d in detections] == [0.9, 0.6, 0.3]


def test_score_is_the_best_class_of_a_multi_class_detector() -> None:
    logits = torch.tensor([[_logit(0.1), _logit(0.7)]])
    boxes = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    [detection] = decode_detections(logits, boxes, (10, 10), threshold=0.5, max_regions=1)
    assert detection.score == pytest.approx(0.7)


def test_postprocess_uses_each_images_own_size() -> None:
    stub = SimpleNamespace(threshold=0.25, max_regions=20)
    outputs = SimpleNamespace(
        logits=torch.full((2, 1, 1), _logit(0.9)),
        pred_boxes=torch.tensor([[[0.5, 0.5, 1.0, 1.0]]] * 2),
    )
    result = RTDetrDetector.postprocess(stub, outputs, [(100, 200), (300, 50)])  # type: ignore[arg-type]
    assert [(d[0].box.x2, d[0].box.y2) for d in result] == [(200, 100), (50, 300)]


def test_nothing_above_threshold_gives_no_detections() -> None:
    logits = torch.full((50, 1), _logit(0.01))
    boxes = torch.rand(50, 4)
    assert decode_detections(logits, boxes, (64, 64), threshold=0.25, max_regions=20) == []


def test_output_that_is_not_a_number_fails_instead_of_finding_nothing() -> None:
    logits = torch.full((5, 1), float("nan"))
    with pytest.raises(ValueError, match="not finite"):
        decode_detections(logits, torch.rand(5, 4), (64, 64), threshold=0.25, max_regions=20)
