"""Snapshot manifests and a snapshot's fitness for a detector: pure functions, no services."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from PIL import Image

from app.learning.dataset import (
    counts_per_class,
    evaluation_split,
    shrink,
    training_problems,
)
from app.learning.snapshot import build_manifest, manifest_bytes, manifest_counts
from app.learning.verified import HumanBox, VerifiedPhoto
from app.policy.retrain import DatasetRules
from models.contracts import Box
from models.training.augment import AugmentConfig, oversample
from models.training.data import split_for
from models.training.synthetic import Annotation, Sample


def photo(n: int, *labels: str, position: int = 0) -> VerifiedPhoto:
    item = uuid.UUID(int=n)
    boxes = [HumanBox(label, 1.0, 2.0, 10.0, 12.0) for label in labels]
    return VerifiedPhoto(item, 100 + n, 200 + n, position, f"k/{n}.png", "h" * 64, 64, 48, boxes)


def test_the_manifest_is_deterministic_and_the_split_is_the_hash_split():
    photos = [photo(n, "stain") for n in range(1, 30)] + [photo(1, "hole", position=1)]
    frozen = {uuid.UUID(int=3), uuid.UUID(int=7)}
    manifest = build_manifest(photos, frozen, val_share=0.3)
    assert manifest_bytes(manifest) == manifest_bytes(build_manifest(photos[::-1], frozen, 0.3))
    for sample in manifest["samples"]:
        item = uuid.UUID(sample["inspection_id"])
        expected = "test" if item in frozen else split_for(str(item), 0.3)
        assert sample["split"] == expected
    # Both photos of an item sit on the same side: the split is per inspection.
    first = [s for s in manifest["samples"] if s["inspection_id"] == str(uuid.UUID(int=1))]
    assert [s["id"].rsplit("/", 1)[1] for s in first] == ["0", "1"]
    assert len({s["split"] for s in first}) == 1
    assert first[1]["boxes"] == [{"label": "hole", "box": [1.0, 2.0, 10.0, 12.0]}]


def test_manifest_counts_per_split_and_class():
    photos = [photo(1, "stain", "stain"), photo(2), photo(3, "hole")]
    manifest = build_manifest(photos, {uuid.UUID(int=3)}, val_share=0.0)
    counts = manifest_counts(manifest)
    assert counts["split_counts"] == {"train": 2, "val": 0, "test": 1}
    assert counts["class_counts"] == {"train": {"stain": 2}, "val": {}, "test": {"hole": 1}}
    assert (counts["samples"], counts["inspections"], counts["max_decision_id"]) == (3, 3, 103)
    empty = manifest_counts(build_manifest([], set(), 0.2))
    assert empty["samples"] == 0 and empty["max_decision_id"] is None


def test_a_one_class_detector_learns_every_type_as_its_class():
    assert counts_per_class({"stain": 3, "hole": 2}, ["defect"]) == ({"defect": 5}, [])
    counts, unknown = counts_per_class({"stain": 3, "snag": 1}, ["stain", "hole"])
    assert counts == {"stain": 3, "hole": 0} and unknown == ["snag"]


def test_training_problems_name_empty_classes_and_unknown_types():
    rules = DatasetRules(min_samples=10, min_per_class=2)
    assert training_problems(12, {"stain": 3}, ["defect"], rules) == []
    problems = training_problems(5, {"stain": 3, "snag": 2}, ["stain", "hole"], rules)
    assert problems == [
        "only 5 samples; at least 10 needed",
        "class hole has no examples",
        "human types snag are not classes of the detector (stain, hole)",
    ]
    assert training_problems(12, {}, ["defect"], rules) == ["class defect has no examples"]


def test_shrink_scales_the_boxes_with_the_photo():
    image = Image.new("RGB", (400, 200))
    small, boxes = shrink(image, [Annotation("tear", Box(100.0, 50.0, 200.0, 150.0))], 100)
    assert small.size == (100, 50)
    assert boxes == (Annotation("tear", Box(25.0, 12.5, 50.0, 37.5)),)
    same, kept = shrink(image, [], 400)
    assert same is image and kept == ()


def test_the_test_split_is_evaluated_on_and_val_only_without_one():
    sample = Sample("a", Image.new("RGB", (8, 8)), ())
    assert evaluation_split({"train": [sample], "val": [sample], "test": []}) == ("val", [sample])
    assert evaluation_split({"train": [], "val": [sample], "test": [sample]})[0] == "test"
    assert evaluation_split({"train": [sample], "val": [], "test": []}) == (None, [])


@pytest.mark.parametrize("share", [0.0, 0.15, 0.5])
def test_no_frozen_item_is_ever_in_train_or_val(share: float):
    photos = [photo(n, "stain") for n in range(1, 50)]
    frozen = {p.inspection_id for p in photos[::3]}
    manifest = build_manifest(photos, frozen, share)
    for sample in manifest["samples"]:
        assert (sample["split"] == "test") == (uuid.UUID(sample["inspection_id"]) in frozen)


def test_rare_classes_are_lifted_even_when_a_site_sees_every_defect_type():
    types = [f"type{i}" for i in range(12)]
    config = AugmentConfig()  # the training run's; oversample lowers the unreachable target
    samples = [
        Sample(f"s{i}", Image.new("RGB", (8, 8)), (Annotation(t, Box(0, 0, 4, 4)),))
        for i, t in enumerate(types * 3 + ["type0"] * 197)
    ]
    grown = oversample(samples, config.min_share)  # no ValueError
    counts = Counter(a.label for s in grown for a in s.annotations)
    assert len(grown) > len(samples)
    assert min(counts.values()) / counts.total() >= 1 / 24
