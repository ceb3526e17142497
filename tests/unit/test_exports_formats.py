"""The export formats' pure parts: class order, box conversions, the files each writer
writes, read back here by hand."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET

import pytest
import yaml

from app.exports.formats import (
    ROUND_TRIP_TOLERANCE_PX,
    class_list,
    clip_box,
    coco_bbox,
    image_name,
    labelstudio_value,
    photo_boxes,
    yolo_line,
)
from app.exports.writers import (
    CocoWriter,
    LabelStudioWriter,
    YoloWriter,
    labeling_config,
    yolo_data_yaml,
)
from models.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy().type_keys


def from_yolo(line: str, width: int, height: int) -> tuple[int, list[float]]:
    index, cx, cy, w, h = line.split()
    x, y, bw, bh = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
    return int(index), [x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2]


def from_percent(value: dict, width: int, height: int) -> list[float]:
    x, y = value["x"] / 100 * width, value["y"] / 100 * height
    return [x, y, x + value["width"] / 100 * width, y + value["height"] / 100 * height]


def test_classes_are_the_taxonomys_types_in_its_order_without_normal():
    classes, unknown = class_list(TAXONOMY, ["hole", "stain", "normal"])
    assert classes == [k for k in TAXONOMY if k != "normal"]
    assert classes[:3] == ["stain", "tear", "discoloration"] and unknown == []
    # The data does not change the order, however few types it holds.
    assert class_list(TAXONOMY, [])[0] == classes


def test_types_the_taxonomy_no_longer_has_come_last_sorted():
    classes, unknown = class_list(TAXONOMY, ["zz_burn", "stain", "aa_mould", "zz_burn"])
    assert unknown == ["aa_mould", "zz_burn"]
    assert classes[-2:] == unknown and len(classes) == len(TAXONOMY) - 1 + 2


@pytest.mark.parametrize(
    ("box", "clipped"),
    [
        ((10.5, 20.25, 30.0, 40.0), (10.5, 20.25, 30.0, 40.0)),
        ((-3.0, 5.0, 20.0, 70.0), (0.0, 5.0, 20.0, 64.0)),
        ((0.0, 0.0, 100.0, 64.0), (0.0, 0.0, 100.0, 64.0)),
        ((101.0, 5.0, 120.0, 9.0), None),
        ((5.0, 64.0, 9.0, 80.0), None),
    ],
)
def test_boxes_are_cut_at_the_photos_edge(box, clipped):
    assert clip_box(box, 100, 64) == clipped


def test_a_samples_boxes_are_indexed_cut_and_counted():
    sample = {"width": 100, "height": 64, "boxes": [
        {"label": "hole", "box": [10.5, 20.25, 30.0, 40.0]},
        {"label": "normal", "box": [1.0, 1.0, 9.0, 9.0]},
        {"label": "stain", "box": [-3.0, 5.0, 20.0, 70.0]},
        {"label": "stain", "box": [101.0, 5.0, 120.0, 9.0]},
    ]}  # fmt: skip
    kept, clipped, dropped = photo_boxes(sample, {"stain": 0, "hole": 4})
    assert kept == [(4, (10.5, 20.25, 30.0, 40.0)), (0, (0.0, 5.0, 20.0, 64.0))]
    assert (clipped, dropped) == (1, 1)


def test_coco_is_xywh_in_pixels():
    assert coco_bbox((10.5, 20.25, 30.0, 40.0)) == [10.5, 20.25, 19.5, 19.75]


def test_yolo_is_centre_and_size_normalised():
    assert yolo_line(3, (0.0, 0.0, 50.0, 32.0), 100, 64) == (
        "3 0.25000000 0.25000000 0.50000000 0.50000000"
    )


@pytest.mark.parametrize(("width", "height"), [(64, 64), (4032, 3024), (100_000, 75_000)])
def test_yolo_reads_back_within_the_tolerance(width, height):
    rng = random.Random(width)
    for _ in range(500):
        x1, x2 = sorted(rng.uniform(0, width) for _ in range(2))
        y1, y2 = sorted(rng.uniform(0, height) for _ in range(2))
        _, back = from_yolo(yolo_line(0, (x1, y1, x2, y2), width, height), width, height)
        assert back == pytest.approx([x1, y1, x2, y2], abs=ROUND_TRIP_TOLERANCE_PX)


def test_six_decimals_would_not_be_enough():
    # Why YOLO_DECIMALS is 8: the usual 6 miss the tolerance on a 4,000 px photo.
    width, rng = 4032, random.Random(7)
    worst = 0.0
    for _ in range(500):
        x1, x2 = sorted(rng.uniform(0, width) for _ in range(2))
        cx, w = round((x1 + x2) / 2 / width, 6), round((x2 - x1) / width, 6)
        worst = max(worst, abs((cx - w / 2) * width - x1))
    assert worst > ROUND_TRIP_TOLERANCE_PX


def test_label_studio_is_percent_and_reads_back():
    value = labelstudio_value((10.0, 16.0, 60.0, 48.0), 200, 64, "hole")
    assert value["x"] == 5.0 and value["y"] == 25.0
    assert value["width"] == 25.0 and value["height"] == 50.0
    assert value["rectanglelabels"] == ["hole"] and value["rotation"] == 0
    box = (123.456789, 7.000001, 3999.999, 2999.5)
    back = from_percent(labelstudio_value(box, 4032, 3024, "x"), 4032, 3024)
    assert back == pytest.approx(list(box), abs=1e-9)


def test_a_photo_is_named_by_its_item_and_position():
    item = "0b9d3c1e-1111-4222-8333-444455556666"
    assert image_name(f"{item}/0", "ab/abcdef.PNG") == f"{item}_0.png"
    assert image_name(f"{item}/2", "ab/abcdef", "jpg") == f"{item}_2.jpg"


def test_data_yaml_names_the_classes_in_order_and_the_splits():
    classes = ["stain", "tear", 'odd: "name" #1']
    data = yaml.safe_load(yolo_data_yaml(classes, ["train", "val", "test"]))
    assert data["names"] == {0: "stain", 1: "tear", 2: 'odd: "name" #1'} and data["nc"] == 3
    assert (data["train"], data["val"], data["test"]) == (
        "train/images", "val/images", "test/images",
    )  # fmt: skip
    whole = yaml.safe_load(yolo_data_yaml(classes, [""]))
    assert whole["train"] == whole["val"] == "images" and "test" not in whole


def test_the_labeling_config_has_every_class_escaped():
    config = ET.fromstring(labeling_config(["stain", 'a "b" <c>']))
    labels = [label.get("value") for label in config.iter("Label")]
    assert labels == ["stain", 'a "b" <c>']
    assert config.find("RectangleLabels").get("toName") == "image"


SAMPLE = {"id": "item/0", "inspection_id": "item", "sha256": "ab" * 32, "width": 100,
          "height": 50}  # fmt: skip
BOXES = [(0, (10.0, 5.0, 30.0, 25.0)), (2, (50.0, 10.0, 100.0, 50.0))]


def test_the_coco_writer_streams_one_valid_document(tmp_path):
    writer = CocoWriter(tmp_path, ["stain", "tear", "hole"], {"description": "test"})
    writer.add(SAMPLE, "images/item_0.png", BOXES)
    writer.add({**SAMPLE, "id": "clean/0"}, "images/clean_0.png", [])
    writer.close()
    data = json.loads((tmp_path / "annotations.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["stain", "tear", "hole"]
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    assert [i["file_name"] for i in data["images"]] == ["images/item_0.png", "images/clean_0.png"]
    assert [(a["image_id"], a["category_id"], a["bbox"]) for a in data["annotations"]] == [
        (1, 1, [10.0, 5.0, 20.0, 20.0]), (1, 3, [50.0, 10.0, 50.0, 40.0]),
    ]  # fmt: skip
    assert data["annotations"][1]["area"] == 2000.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.json"]  # no side file


def test_the_yolo_writer_writes_a_label_file_per_photo_even_empty(tmp_path):
    writer = YoloWriter(tmp_path, ["stain", "tear", "hole"], {})
    writer.add(SAMPLE, "images/item_0.png", BOXES)
    writer.add({**SAMPLE, "id": "clean/0"}, "images/clean_0.png", [])
    writer.close()
    lines = (tmp_path / "labels" / "item_0.txt").read_text().splitlines()
    assert [from_yolo(line, 100, 50) for line in lines] == [
        (0, pytest.approx([10.0, 5.0, 30.0, 25.0])), (2, pytest.approx([50.0, 10.0, 100.0, 50.0])),
    ]  # fmt: skip
    assert (tmp_path / "labels" / "clean_0.txt").read_text() == ""


def test_the_label_studio_writer_writes_tasks_with_percent_boxes(tmp_path):
    writer = LabelStudioWriter(tmp_path, ["stain", "tear", "hole"], {})
    writer.add(SAMPLE, "images/item_0.png", BOXES)
    writer.add({**SAMPLE, "id": "clean/0"}, "images/clean_0.png", [])
    writer.close()
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert [t["data"]["image"] for t in tasks] == ["images/item_0.png", "images/clean_0.png"]
    [first] = tasks[0]["annotations"]
    results = first["result"]
    assert [r["value"]["rectanglelabels"] for r in results] == [["stain"], ["hole"]]
    assert {(r["original_width"], r["original_height"]) for r in results} == {(100, 50)}
    assert from_percent(results[1]["value"], 100, 50) == pytest.approx([50.0, 10.0, 100.0, 50.0])
    assert len({r["id"] for r in results}) == 2
    assert tasks[1]["annotations"][0]["result"] == []
