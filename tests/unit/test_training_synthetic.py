"""Synthetic garment photos: seeded, deterministic, and every box exact."""

import numpy as np
import pytest

from models.training import synthetic
from models.training.synthetic import DEFECT_CLASSES, make_dataset, make_sample


def _pixels(sample: synthetic.Sample) -> np.ndarray:
    return np.asarray(sample.image)


def test_same_seed_same_images_and_boxes_other_seed_differs() -> None:
    first, again, other = make_dataset(6, 3, 96), make_dataset(6, 3, 96), make_dataset(6, 4, 96)
    for a, b in zip(first, again, strict=True):
        assert a.id == b.id and a.annotations == b.annotations
        assert np.array_equal(_pixels(a), _pixels(b))
    assert not all(
        np.array_equal(_pixels(a), _pixels(c)) for a, c in zip(first, other, strict=True)
    )
    assert len({s.id for s in first} | {s.id for s in other}) == 12


def test_a_larger_dataset_extends_a_smaller_one() -> None:
    small, large = make_dataset(3, 9, 64), make_dataset(5, 9, 64)
    for a, b in zip(small, large[:3], strict=True):
        assert a.id == b.id and a.annotations == b.annotations
        assert np.array_equal(_pixels(a), _pixels(b))


def test_boxes_are_inside_the_image_apart_and_labelled() -> None:
    samples = make_dataset(60, 1, 128)
    counts = {len(s.annotations) for s in samples}
    assert counts == {0, 1, 2, 3}
    assert {a.label for s in samples for a in s.annotations} == set(DEFECT_CLASSES)
    for sample in samples:
        assert sample.image.size == (128, 128) and sample.image.mode == "RGB"
        boxes = [a.box for a in sample.annotations]
        for box in boxes:
            assert 0 <= box.x1 < box.x2 <= 128 and 0 <= box.y1 < box.y2 <= 128
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                overlap_w = min(a.x2, b.x2) - max(a.x1, b.x1)
                overlap_h = min(a.y2, b.y2) - max(a.y1, b.y1)
                assert overlap_w <= 0 or overlap_h <= 0


@pytest.mark.parametrize("label", DEFECT_CLASSES)
def test_the_box_is_exactly_the_painted_pixels(label: str) -> None:
    """Painting a defect changes pixels on every edge of its box and none outside it."""
    for seed in range(5):
        rng = np.random.default_rng(seed)
        fabric = synthetic._fabric(rng, 128)
        placed = synthetic._place(rng, label, 128, fabric, [])
        assert placed is not None
        box, layers = placed
        painted = fabric.copy()
        for layer in layers:
            synthetic._paint(painted, layer)
        changed = np.abs(painted - fabric).max(axis=2) > 0
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        assert (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1) == (box.x1, box.y1, box.x2, box.y2)


def test_holes_are_dark_and_pills_light_against_their_fabric() -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        image, annotations = make_sample(rng, 128, class_probs=[0, 0.5, 0, 0.5])
        gray = np.asarray(image.convert("L"), dtype=float)
        for a in annotations:
            inside = gray[int(a.box.y1) : int(a.box.y2), int(a.box.x1) : int(a.box.x2)]
            if a.label == "hole":
                assert inside.min() < 0.25 * np.median(gray)
            else:
                assert inside.max() > np.percentile(gray, 99)


def test_class_probabilities_steer_which_defects_appear() -> None:
    samples = make_dataset(40, 2, 64, class_probs=[0, 0, 1, 0])
    labels = {a.label for s in samples for a in s.annotations}
    assert labels == {"tear"}
