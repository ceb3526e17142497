"""Each reader on small exports written here: boxes to the pixel, and messy exports with
messages that name the files and the fix."""

from __future__ import annotations

import pytest

from app.imports.coco import CocoSource
from app.imports.folders import FolderSource
from app.imports.labelstudio import LabelStudioSource
from app.imports.mapping import resolve
from app.imports.plan import Refused, label_stops, labels_of, take_census
from app.imports.records import SourceError, in_pixels
from app.imports.yolo import YoloSource
from models.taxonomy import load_taxonomy
from tests.unit.imports_support import photo, roboflow_yolo, write, write_json

TAXONOMY = load_taxonomy()
SEVERITIES = TAXONOMY.severity_keys


def boxes_of(record, width, height):
    return [(b.label, b.x1, b.y1, b.x2, b.y2) for b in in_pixels(record, width, height)]


# --- YOLO ---------------------------------------------------------------------------------


def test_yolo_data_yaml_with_roboflow_paths_gives_pixel_boxes(tmp_path):
    root = roboflow_yolo(tmp_path / "site", ["Hole", "stain"], {
        "train": {"a": "0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.5 0.5\n", "b": ""},
        "val": {"c": "1 0.5 0.5 1 1\n"},
    })  # fmt: skip
    records = {r.name: r for r in YoloSource(root).records()}
    assert set(records) == {"train/images/a.jpg", "train/images/b.jpg", "valid/images/c.jpg"}
    a = records["train/images/a.jpg"]
    assert a.split == "train" and a.units == "fraction"
    # 64x48: cx 0.5 w 0.25 -> x 24..40; cy 0.5 h 0.5 -> y 12..36.
    assert boxes_of(a, 64, 48) == [
        ("Hole", 24.0, 12.0, 40.0, 36.0),
        ("stain", 0.0, 0.0, 32.0, 24.0),
    ]
    assert records["train/images/b.jpg"].labelled and records["train/images/b.jpg"].boxes == ()
    assert records["valid/images/c.jpg"].split == "val"
    # Capitalised names map by themselves, case ignored.
    census = take_census(records.values())
    class_map = resolve(census.classes, TAXONOMY.type_keys, [], skip_unknown=False)
    assert class_map.targets == {"Hole": "hole", "stain": "stain"}


def test_yolo_ids_shifted_by_one_stop_with_the_id_map_that_fixes_them(tmp_path):
    # Names for ids 0 and 1, labels that use 1 and 2: a Roboflow export counting from 1.
    root = roboflow_yolo(tmp_path / "rf", ["hole", "stain"], {
        "train": {"a": "1 0.5 0.5 0.2 0.2\n", "b": "2 0.5 0.5 0.2 0.2\n2 0.1 0.1 0.1 0.1\n"},
    })  # fmt: skip
    source = YoloSource(root)
    census = take_census(source.records())
    [message] = source.stops(census)
    assert "id 2: 2 boxes in 1 files (train/images/b.jpg)" in message
    assert "--id-map 1=hole --id-map 2=stain" in message
    assert "data.yaml" in message
    # The fix it names works: every id has a name, nothing stops.
    fixed = YoloSource(root, id_map={1: "hole", 2: "stain"})
    assert fixed.stops(take_census(fixed.records())) == []


def test_yolo_split_without_labels_folder_stops_verified_but_not_with_negatives(tmp_path):
    root = roboflow_yolo(tmp_path / "x", ["hole"], {
        "train": {"a": "0 0.5 0.5 0.2 0.2\n"}, "val": {"b": None, "c": None},
    })  # fmt: skip
    census = take_census(YoloSource(root).records())
    [stop] = label_stops(census, "verified", unlabeled_is_negative=False)
    assert stop.startswith("split val: none of its 2 images has labels (e.g. valid/images/b.jpg")
    assert "--unlabeled-is-negative" in stop
    assert label_stops(census, "verified", unlabeled_is_negative=True) == []
    assert label_stops(census, "inspect", unlabeled_is_negative=False) == []


def test_yolo_flat_folder_needs_names_and_says_so(tmp_path):
    photo(tmp_path / "flat" / "a.jpg")
    write(tmp_path / "flat" / "a.txt", "0 0.5 0.5 0.5 0.5\n")
    source = YoloSource(tmp_path / "flat")
    [message] = source.stops(take_census(source.records()))
    assert "no data.yaml, classes.txt or --names" in message and "--names a,b,c" in message
    named = YoloSource(tmp_path / "flat", names=["tear"])
    [record] = named.records()
    assert boxes_of(record, 64, 48) == [("tear", 16.0, 12.0, 48.0, 36.0)]
    write(tmp_path / "flat" / "classes.txt", "snag\n")
    assert [b.label for b in next(YoloSource(tmp_path / "flat").records()).boxes] == ["snag"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2 0.2 0.93", "look like a model's predictions"),
        ("0 320 240 50 50", "fractions of the image (pixel coordinates?)"),
        ("0 0.5 0.5", "3 values"),
        ("x 0.5 0.5 0.2 0.2", "not numbers"),
    ],
)
def test_yolo_bad_lines_refuse_the_image_naming_file_and_line(tmp_path, line, message):
    photo(tmp_path / "d" / "images" / "a.jpg")
    write(tmp_path / "d" / "labels" / "a.txt", f"0 0.5 0.5 0.2 0.2\n{line}\n")
    [record] = YoloSource(tmp_path / "d", names=["hole"]).records()
    assert record.problem.startswith("labels/a.txt line 2: ")
    assert message in record.problem


def test_yolo_polygon_becomes_its_box_and_missing_label_is_no_label(tmp_path):
    photo(tmp_path / "d" / "a.jpg")
    write(tmp_path / "d" / "a.txt", "0 0.1 0.2 0.5 0.25 0.3 0.75\n")
    photo(tmp_path / "d" / "b.jpg", shade=1)
    a, b = YoloSource(tmp_path / "d", names=["hole"]).records()
    assert boxes_of(a, 100, 100) == [("hole", 10.0, 20.0, 50.0, 75.0)]
    assert a.boxes[0].note == "polygon"
    assert not b.labelled


def test_yolo_yaml_errors_name_the_entry_and_fix(tmp_path):
    write(tmp_path / "data.yaml", "names: [a, b]\nnc: 3\ntrain: train/images\n")
    with pytest.raises(SourceError, match="nc is 3 but names has 2"):
        YoloSource(tmp_path)
    write(tmp_path / "data.yaml", "names: [a]\ntrain: nowhere/images\n")
    with pytest.raises(SourceError, match=r"train: nowhere/images does not exist.*--split"):
        YoloSource(tmp_path)


def test_boxes_reaching_outside_the_photo_refuse_it(tmp_path):
    photo(tmp_path / "d" / "a.jpg")
    write(tmp_path / "d" / "a.txt", "0 0.9 0.5 0.4 0.2\n")  # x up to 1.1
    [record] = YoloSource(tmp_path / "d", names=["hole"]).records()
    class_map = resolve(take_census([record]).classes, TAXONOMY.type_keys, [], skip_unknown=False)
    with pytest.raises(Refused, match=r"reaches outside the 64x48 image"):
        labels_of(record, 64, 48, class_map, mode="verified", unlabeled_is_negative=False)


# --- COCO ---------------------------------------------------------------------------------


def coco_export(root, annotations, images=None):
    images = images or [
        {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
        {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
    ]
    for i, image in enumerate(images):
        photo(root / "train" / image["file_name"], shade=i)
    categories = [
        {"id": 0, "name": "defects"},
        {"id": 1, "name": "Hole"},
        {"id": 2, "name": "pilling"},
    ]
    data = {"images": images, "annotations": annotations, "categories": categories}
    return write_json(root / "train" / "_annotations.coco.json", data)


def test_coco_boxes_crowds_and_images_without_annotations(tmp_path):
    coco_export(tmp_path / "c", [
        {"id": 10, "image_id": 1, "category_id": 1, "bbox": [4.5, 6, 10, 20], "iscrowd": 0},
        {"id": 11, "image_id": 1, "category_id": 2, "bbox": [30, 10, 20, 30], "iscrowd": 1,
         "segmentation": {"counts": "abc", "size": [48, 64]}},
    ])  # fmt: skip
    a, b = CocoSource(tmp_path / "c").records()
    assert (a.name, a.split, a.size) == ("train/a.jpg", "train", (64, 48))
    assert boxes_of(a, 64, 48) == [
        ("Hole", 4.5, 6.0, 14.5, 26.0),
        ("pilling", 30.0, 10.0, 50.0, 40.0),
    ]
    # A crowd region stays one box of its class, counted by its note.
    assert [box.note for box in a.boxes] == [None, "crowd"]
    # Listed without annotations: a clean garment, not "unlabelled".
    assert b.labelled and b.boxes == ()


def test_coco_problems_name_the_annotation_and_the_size(tmp_path):
    coco_export(tmp_path / "c", [
        {"id": 10, "image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5]},
    ], images=[
        {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
        {"id": 2, "file_name": "b.jpg", "width": 48, "height": 64},
        {"id": 3, "file_name": "gone.jpg", "width": 64, "height": 48},
    ])  # fmt: skip
    (tmp_path / "c" / "train" / "gone.jpg").unlink()
    a, b, gone = CocoSource(tmp_path / "c").records()
    assert a.problem == "_annotations.coco.json: annotation 10: category 9 is not in categories"
    with pytest.raises(ValueError, match=r"made on a 48x64 image, the file is 64x48 \(EXIF"):
        in_pixels(b, 64, 48)
    assert "gone.jpg not found" in gone.problem and "--images" in gone.problem


# --- Label Studio -------------------------------------------------------------------------


def ls_task(task_id, url, results, **annotation):
    return {"id": task_id, "data": {"image": url},
            "annotations": [{"result": results, "was_cancelled": False, **annotation}]}  # fmt: skip


def rect(label, x, y, w, h, rotation=0, size=(200, 100)):
    return {"type": "rectanglelabels", "from_name": "label", "to_name": "image",
            "original_width": size[0], "original_height": size[1],
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation,
                      "rectanglelabels": [label]}}  # fmt: skip


def choices(*values):
    return {"type": "choices", "value": {"choices": list(values)}}


def test_labelstudio_percent_coordinates_become_pixels(tmp_path):
    photo(tmp_path / "ls" / "images" / "shirt.jpg", size=(200, 100))
    photo(tmp_path / "ls" / "images" / "pants.png", size=(200, 100), shade=3, fmt="PNG")
    photo(tmp_path / "ls" / "images" / "coat.jpg", size=(200, 100), shade=5)
    tasks = [
        # Uploaded: Label Studio put an 8-hex prefix before the file name.
        ls_task(1, "/data/upload/3/1a2b3c4d-shirt.jpg",
                [rect("Stain", 10, 20, 30, 40), choices("moderate")]),
        # Local storage, a rotated box (90 degrees about its top-left corner).
        ls_task(2, "/data/local-files/?d=images/pants.png", [rect("tear", 50, 10, 10, 20, 90)]),
        ls_task(3, "s3://bucket/coat.jpg", [choices("normal")]),
        {"id": 4, "data": {"image": "/data/upload/3/coat.jpg"},
         "annotations": [{"result": [], "was_cancelled": True}]},
    ]  # fmt: skip
    write_json(tmp_path / "ls" / "export.json", tasks)
    shirt, pants, coat, cancelled = LabelStudioSource(
        tmp_path / "ls", severities=SEVERITIES
    ).records()
    assert shirt.name == "images/shirt.jpg"
    # x 10% of 200 = 20 .. (10+30)% = 80; y 20% of 100 = 20 .. 60.
    assert boxes_of(shirt, 200, 100) == [("Stain", 20.0, 20.0, 80.0, 60.0)]
    assert shirt.boxes[0].severity == "moderate"
    # (100, 10) px, 20 x 20 px rotated 90 degrees clockwise: x 80..100, y 10..30.
    [(label, *box)] = boxes_of(pants, 200, 100)
    assert label == "tear" and box == pytest.approx([80.0, 10.0, 100.0, 30.0])
    assert pants.boxes[0].note == "rotated"
    assert coat.label == "normal" and coat.boxes == ()
    assert not cancelled.labelled


def test_labelstudio_problems(tmp_path):
    photo(tmp_path / "ls" / "a.jpg", size=(200, 100))
    write_json(tmp_path / "ls" / "tasks.json", [
        ls_task(1, "/data/upload/1/a.jpg", [{"type": "brushlabels", "value": {}}]),
        ls_task(2, "/data/upload/1/missing.jpg", [rect("hole", 1, 1, 5, 5)]),
    ])  # fmt: skip
    brush, missing = LabelStudioSource(tmp_path / "ls", severities=SEVERITIES).records()
    assert brush.problem == "task 1: brushlabels regions are not supported; use rectangles"
    assert "image /data/upload/1/missing.jpg not found" in missing.problem
    write_json(tmp_path / "min" / "x.json", [{"image": "a.jpg", "label": "hole"}])
    with pytest.raises(SourceError, match="JSON-MIN"):
        list(LabelStudioSource(tmp_path / "min", severities=SEVERITIES).records())


# --- folders ------------------------------------------------------------------------------


def test_folders_with_splits_give_image_labels_that_cover_the_photo(tmp_path):
    photo(tmp_path / "crops" / "train" / "Hole" / "1.jpg")
    photo(tmp_path / "crops" / "train" / "normal" / "2.jpg", shade=1)
    photo(tmp_path / "crops" / "valid" / "hole" / "3.jpg", shade=2)
    photo(tmp_path / "crops" / "valid" / "loose.jpg", shade=3)
    records = list(FolderSource(tmp_path / "crops").records())
    assert [(r.name, r.split, r.label, r.labelled) for r in records] == [
        ("train/Hole/1.jpg", "train", "Hole", True),
        ("train/normal/2.jpg", "train", "normal", True),
        ("valid/loose.jpg", "val", None, False),
        ("valid/hole/3.jpg", "val", "hole", True),
    ]
    census = take_census(records)
    class_map = resolve(census.classes, TAXONOMY.type_keys, [], skip_unknown=False)
    hole = labels_of(records[0], 64, 48, class_map, mode="verified", unlabeled_is_negative=False)
    assert [(b.defect_type, b.x1, b.y1, b.x2, b.y2) for b in hole.boxes] == [("hole", 0, 0, 64, 48)]
    assert hole.verdict == "reject"
    normal = labels_of(records[1], 64, 48, class_map, mode="verified", unlabeled_is_negative=False)
    assert [b.defect_type for b in normal.boxes] == ["normal"] and normal.verdict == "pass"
    with pytest.raises(Refused, match="--unlabeled-is-negative"):
        labels_of(records[2], 64, 48, class_map, mode="verified", unlabeled_is_negative=False)
    assert (
        labels_of(records[2], 64, 48, class_map, mode="inspect", unlabeled_is_negative=False)
        is None
    )


def test_yolo_one_folder_named_by_two_splits_is_read_once(tmp_path):
    # What an export without splits writes for Ultralytics: train and val are one folder.
    write(
        tmp_path / "data.yaml", 'path: .\ntrain: images\nval: images\nnc: 1\nnames:\n  0: "hole"\n'
    )
    photo(tmp_path / "images" / "a.jpg")
    write(tmp_path / "labels" / "a.txt", "0 0.5 0.5 0.5 0.5\n")
    [record] = YoloSource(tmp_path).records()
    assert (record.name, record.split, [b.label for b in record.boxes]) == (
        "images/a.jpg",
        "train",
        ["hole"],
    )


def test_labelstudio_relative_image_paths_are_found_as_written(tmp_path):
    photo(tmp_path / "ls" / "val" / "images" / "a.jpg", size=(200, 100))
    photo(tmp_path / "ls" / "images" / "a.jpg", size=(200, 100), shade=7)  # same name elsewhere
    write_json(tmp_path / "ls" / "tasks.json", [ls_task(1, "val/images/a.jpg", [])])
    [record] = LabelStudioSource(tmp_path / "ls", severities=SEVERITIES).records()
    assert record.name == "val/images/a.jpg" and record.labelled and record.boxes == ()
