"""RT-DETR batches (normalised cx, cy, w, h) and the stable train/validation split."""

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image
from transformers import RTDetrImageProcessorPil

from models.contracts import Box
from models.training.data import label_ids, make_batch, split_for, split_samples, target_for
from models.training.synthetic import Annotation, make_dataset

IDS = {"stain": 0, "hole": 1}


def test_split_share_is_close_to_the_configured_one_over_many_ids() -> None:
    ids = [f"inspection-{n}" for n in range(10_000)]
    for share in (0.1, 0.2, 0.5):
        val = sum(split_for(i, share) == "val" for i in ids) / len(ids)
        assert val == pytest.approx(share, abs=0.015)  # about 3.5 binomial sigmas
    assert {split_for(i, 0.0) for i in ids} == {"train"}
    assert {split_for(i, 1.0) for i in ids} == {"val"}


def test_split_is_the_same_in_another_process_and_needs_no_torch() -> None:
    ids = [f"0b6f{n:04d}-uuid" for n in range(300)]
    here = [split_for(i, 0.25) for i in ids]
    code = (
        "import json, sys; from models.training.data import split_for; "
        "splits = [split_for(i, 0.25) for i in json.load(sys.stdin)]; "
        "print(json.dumps({'splits': splits, 'torch': 'torch' in sys.modules}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(ids), capture_output=True, text=True,
        env=env, check=True, timeout=60,
    )  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["splits"] == here
    # The web app snapshots datasets with this function; it must not load torch for it.
    assert answer["torch"] is False
    assert "val" in here and "train" in here


def test_a_larger_validation_share_only_moves_items_from_train_to_val() -> None:
    ids = [f"item-{n}" for n in range(2000)]
    small = {i for i in ids if split_for(i, 0.1) == "val"}
    large = {i for i in ids if split_for(i, 0.3) == "val"}
    assert small < large


def test_split_samples_partitions_by_id() -> None:
    samples = make_dataset(30, 0, 32)
    train, val = split_samples(samples, 0.3)
    assert sorted(s.id for s in train + val) == sorted(s.id for s in samples)
    assert all(split_for(s.id, 0.3) == "val" for s in val)
    with pytest.raises(ValueError):
        split_for("x", 1.5)


def test_targets_are_normalised_centre_and_size() -> None:
    annotations = [
        Annotation("hole", Box(20, 10, 60, 30)),
        Annotation("stain", Box(0, 0, 200, 100)),
    ]
    target = target_for(annotations, (200, 100), IDS)
    assert target["class_labels"].dtype == torch.long
    assert target["class_labels"].tolist() == [1, 0]
    assert target["boxes"].dtype == torch.float32
    expected = [[0.2, 0.2, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0]]
    assert target["boxes"].flatten().tolist() == pytest.approx(sum(expected, []))


def test_boxes_reaching_past_the_image_are_clipped_to_it() -> None:
    target = target_for([Annotation("hole", Box(-10, 90, 30, 120))], (100, 100), IDS)
    assert target["boxes"].flatten().tolist() == pytest.approx([0.15, 0.95, 0.3, 0.1])


def test_an_image_without_defects_has_empty_targets_of_the_right_shape() -> None:
    target = target_for([], (64, 64), IDS)
    assert target["boxes"].shape == (0, 4) and target["boxes"].dtype == torch.float32
    assert target["class_labels"].shape == (0,) and target["class_labels"].dtype == torch.long


def test_batch_pixels_are_only_rescaled_and_labels_follow_the_original_size() -> None:
    processor = RTDetrImageProcessorPil(size={"height": 64, "width": 64})
    small = Image.new("RGB", (64, 64), (255, 0, 51))
    wide = Image.new("RGB", (128, 64), (0, 102, 255))
    items = [(small, [Annotation("stain", Box(0, 0, 32, 32))]), (wide, [])]
    batch = make_batch(items, processor, IDS)
    pixels = batch["pixel_values"]
    assert pixels.shape == (2, 3, 64, 64)
    assert pixels[0, :, 10, 10].tolist() == pytest.approx([1.0, 0.0, 0.2])
    assert pixels[1, :, 10, 10].tolist() == pytest.approx([0.0, 0.4, 1.0])
    assert batch["labels"][0]["boxes"].flatten().tolist() == pytest.approx([0.25, 0.25, 0.5, 0.5])
    assert batch["labels"][1]["boxes"].shape == (0, 4)


def test_a_one_class_detector_takes_every_label_a_multi_class_one_must_know_them() -> None:
    assert label_ids({0: "defect"}, ["tear", "stain", "tear"]) == {"stain": 0, "tear": 0}
    assert label_ids({0: "stain", 1: "tear"}, ["tear"]) == {"tear": 1}
    with pytest.raises(ValueError, match="pilling"):
        label_ids({0: "stain", 1: "tear"}, ["tear", "pilling"])
