"""Augmentation moves boxes with the pixels, keeps them inside, and favours rare classes."""

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.contracts import Box
from models.training.augment import (
    AugmentConfig,
    Augmenter,
    class_weights,
    oversample,
    rare_classes,
)
from models.training.synthetic import Annotation, Sample, make_dataset

STILL = AugmentConfig(
    rotate_p=0.0, color_p=0.0, hflip_p=0.0, vflip_p=0.0, min_share=0.0, rare_strength=1.0
)


def _disc(
    center: tuple[int, int], radius: int = 9, size: tuple[int, int] = (160, 120)
) -> tuple[Image.Image, list[Annotation]]:
    image = Image.new("RGB", size, (0, 0, 0))
    x, y = center
    ImageDraw.Draw(image).ellipse((x - radius, y - radius, x + radius, y + radius), fill="white")
    box = Box(x - radius, y - radius, x + radius + 1, y + radius + 1)
    return image, [Annotation("hole", box)]


def _bright_centroid(image: Image.Image) -> tuple[float, float]:
    ys, xs = np.nonzero(np.asarray(image.convert("L")) > 200)
    return float(xs.mean()) + 0.5, float(ys.mean()) + 0.5


def _xyxy(box: Box) -> tuple[float, float, float, float]:
    return box.x1, box.y1, box.x2, box.y2


def _sample(sample_id: str, *labels: str) -> Sample:
    annotations = tuple(Annotation(label, Box(0, 0, 4, 4)) for label in labels)
    return Sample(sample_id, Image.new("RGB", (8, 8)), annotations)


def test_horizontal_flip_mirrors_the_box_exactly() -> None:
    image, annotations = _disc((40, 30))
    augment = Augmenter(replace(STILL, hflip_p=1.0))
    flipped, [moved] = augment(image, annotations)
    box = annotations[0].box
    mirrored = (160 - box.x2, box.y1, 160 - box.x1, box.y2)
    assert _xyxy(moved.box) == pytest.approx(mirrored, abs=1e-4)
    assert np.array_equal(np.asarray(flipped), np.asarray(image)[:, ::-1])


def test_rotation_and_flips_move_the_box_with_the_pixels() -> None:
    config = replace(STILL, rotate_p=1.0, hflip_p=0.5, vflip_p=0.5)
    image, annotations = _disc((45, 35))
    moved_any = False
    for seed in range(12):
        out, [moved] = Augmenter(config, seed=seed)(image, annotations)
        cx, cy = _bright_centroid(out)
        box = moved.box
        assert (box.x1 + box.x2) / 2 == pytest.approx(cx, abs=1.0)
        assert (box.y1 + box.y2) / 2 == pytest.approx(cy, abs=1.0)
        # "ellipse" keeps a rotated disc's box about the disc's size.
        assert box.x2 - box.x1 == pytest.approx(19, abs=2.5)
        moved_any |= abs(cx - 45.5) > 3 or abs(cy - 35.5) > 3
    assert moved_any


def test_boxes_stay_inside_the_image_under_strong_augmentation() -> None:
    config = replace(AugmentConfig(), rotate_p=1.0, rotate_limit=30.0)
    augment = Augmenter(config, rare={"tear"}, seed=1)
    kept = 0
    for sample in make_dataset(40, 11, 96):
        out, moved = augment(sample.image, sample.annotations)
        assert out.size == sample.image.size
        assert {a.label for a in moved} <= {a.label for a in sample.annotations}
        for a in moved:
            assert 0 <= a.box.x1 < a.box.x2 <= 96 and 0 <= a.box.y1 < a.box.y2 <= 96
        kept += len(moved)
    assert kept > 0


def test_augmentation_is_reproducible_from_its_seed() -> None:
    samples = make_dataset(5, 2, 64)
    runs = []
    for _ in range(2):
        augment = Augmenter(AugmentConfig(), seed=7)
        runs.append([augment(s.image, s.annotations) for s in samples])
    for (image_a, boxes_a), (image_b, boxes_b) in zip(*runs, strict=True):
        assert np.array_equal(np.asarray(image_a), np.asarray(image_b)) and boxes_a == boxes_b


def test_images_with_a_rare_class_get_the_stronger_pipeline() -> None:
    config = replace(STILL, rare_strength=2.0)  # every range stays "no change" but noise
    augment = Augmenter(config, rare={"tear"}, seed=0)
    common, rare = _disc((50, 50)), (_disc((50, 50))[0], [Annotation("tear", Box(1, 1, 9, 9))])
    changed = Counter()
    for _ in range(10):
        for name, (image, annotations) in (("common", common), ("rare", rare)):
            out, _ = augment(image, annotations)
            changed[name] += not np.array_equal(np.asarray(out), np.asarray(image))
    assert changed["common"] == 0 and changed["rare"] > 0


def test_class_weights_are_one_when_balanced_and_above_one_when_rare() -> None:
    balanced = [_sample("a", "stain", "hole"), _sample("b", "hole", "stain")]
    assert class_weights(balanced) == {"hole": 1.0, "stain": 1.0}
    skewed = [_sample(f"s{i}", "stain") for i in range(9)] + [_sample("t", "tear")]
    weights = class_weights(skewed)
    assert weights["tear"] == pytest.approx(5.0) and weights["stain"] == pytest.approx(10 / 18)
    assert rare_classes(skewed, AugmentConfig()) == {"tear"}


def test_oversampling_raises_a_rare_class_to_its_share() -> None:
    samples = [_sample(f"s{i}", "stain", "hole") for i in range(40)]
    samples += [_sample("t1", "tear"), _sample("t2", "tear", "stain")]
    before = Counter(a.label for s in samples for a in s.annotations)
    grown = oversample(samples, min_share=0.2)
    after = Counter(a.label for s in grown for a in s.annotations)
    assert before["tear"] / before.total() < 0.03
    assert after["tear"] / after.total() >= 0.2
    assert grown[: len(samples)] == samples  # originals first, repeats appended
    repeats = grown[len(samples) :]
    assert {s.id for s in repeats} == {"t1", "t2"}
    # The image with only the rare class is the better repeat, so it comes first.
    assert repeats[0].id == "t1"
    assert oversample(samples, min_share=0.2) == grown


def test_oversampling_leaves_balanced_sets_alone() -> None:
    balanced = [_sample("a", "stain", "hole"), _sample("b", "tear")]
    assert oversample(balanced, min_share=0.3) == balanced
    assert oversample(balanced, min_share=0.0) == balanced
    # 3 x 0.4 > 1: the target falls to 1/6, which every class already has.
    assert oversample(balanced, min_share=0.4) == balanced


def test_oversampling_lifts_rare_classes_when_the_share_is_unreachable() -> None:
    # Twelve classes at 10 % each would need 120 % of the boxes: the target falls to half
    # an even share, 1/24, rather than raising or running to the cap.
    rare = [f"type{i}" for i in range(1, 12)]
    samples = [_sample(f"c{i:03d}", "type0") for i in range(200)]
    samples += [_sample(f"r{i}-{label}", label) for label in rare for i in range(3)]
    before = Counter(a.label for s in samples for a in s.annotations)
    assert min(before[label] for label in rare) / before.total() < 1 / 24
    grown = oversample(samples, min_share=0.1)
    after = Counter(a.label for s in grown for a in s.annotations)
    assert grown[: len(samples)] == samples
    assert all(after[label] / after.total() >= 1 / 24 for label in rare)
    assert len(grown) < 2 * len(samples)  # the target was reached, not the cap
    assert oversample(samples, min_share=0.1) == grown
    # The same as asking for the reachable share directly.
    assert oversample(samples, min_share=1 / 24) == grown


def test_oversampling_stops_at_its_cap() -> None:
    # tear only ever appears beside two stains: its share can never pass 1/3.
    samples = [_sample(f"s{i}", "stain") for i in range(10)] + [
        _sample("t", "tear", "stain", "stain")
    ]
    grown = oversample(samples, min_share=0.5, max_extra=2.0)
    assert len(grown) == len(samples) * 3


def test_a_models_record_says_which_rare_class_share_oversampling_aimed_at():
    from models.training.train import _augment_record

    labels = [f"type{i}" for i in range(12)]
    samples = [Sample(f"s{i}", Image.new("RGB", (8, 8)), (Annotation(t, Box(0, 0, 4, 4)),))
               for i, t in enumerate(labels)]  # fmt: skip
    assert _augment_record(AugmentConfig(), samples)["min_share"] == pytest.approx(1 / 24)
    assert _augment_record(AugmentConfig(), samples[:4])["min_share"] == 0.1
    assert _augment_record(None, samples) is None
