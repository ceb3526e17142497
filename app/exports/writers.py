"""One writer per box format, fed a photo at a time so that no export is held in memory.

A writer writes one folder (the whole export, or one split of it): the photos are already
in `images/`; it adds the annotations for each, and the dataset's own files at the top
(YOLO's data.yaml, Label Studio's labeling config) come from `dataset_files`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol
from xml.sax.saxutils import quoteattr

from app.exports.formats import (
    Box,
    coco_bbox,
    labelstudio_region_id,
    labelstudio_value,
    yolo_line,
)

IMAGES = "images"
COCO_FILE = "annotations.json"
LABELSTUDIO_FILE = "tasks.json"
YOLO_LABELS = "labels"


class FormatWriter(Protocol):
    def add(self, sample: dict[str, Any], image: str, boxes: Sequence[tuple[int, Box]]) -> None:
        """One photo: `image` is its path relative to the folder, `boxes` its (class
        index, clipped box) pairs."""

    def close(self) -> None: ...


class CocoWriter:
    """annotations.json: images are written as they come, annotations to a side file
    that is appended at the end (COCO lists all images before all annotations)."""

    def __init__(self, folder: Path, classes: Sequence[str], info: dict[str, Any]) -> None:
        self.path = folder / COCO_FILE
        self._side_path = folder / f".{COCO_FILE}.annotations"
        self._main: IO[str] = self.path.open("w", encoding="utf-8")
        self._side: IO[str] = self._side_path.open("w+", encoding="utf-8")
        self._images = 0
        self._annotations = 0
        categories = [{"id": i + 1, "name": name, "supercategory": "defect"}
                      for i, name in enumerate(classes)]  # fmt: skip
        head = {"info": info, "licenses": [], "categories": categories}
        # The object's head, then the "images" array left open for add().
        self._main.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "images": [')

    def add(self, sample: dict[str, Any], image: str, boxes: Sequence[tuple[int, Box]]) -> None:
        self._images += 1
        entry = {"id": self._images, "file_name": image, "width": sample["width"],
                 "height": sample["height"], "loupe_sample": sample["id"],
                 "inspection_id": sample["inspection_id"], "sha256": sample["sha256"]}  # fmt: skip
        self._main.write(("" if self._images == 1 else ", ") + json.dumps(entry))
        for class_index, box in boxes:
            self._annotations += 1
            bbox = coco_bbox(box)
            annotation = {"id": self._annotations, "image_id": self._images,
                          "category_id": class_index + 1, "bbox": bbox,
                          "area": bbox[2] * bbox[3], "iscrowd": 0, "segmentation": []}  # fmt: skip
            self._side.write(("" if self._annotations == 1 else ", ") + json.dumps(annotation))

    def close(self) -> None:
        self._main.write('], "annotations": [')
        self._side.seek(0)
        while chunk := self._side.read(1 << 20):
            self._main.write(chunk)
        self._main.write("]}\n")
        self._main.close()
        self._side.close()
        self._side_path.unlink()


class YoloWriter:
    """labels/<photo's stem>.txt beside images/, one line per box; a photo without boxes
    gets an empty file: YOLO's tools read that as a verified background image."""

    def __init__(self, folder: Path, classes: Sequence[str], info: dict[str, Any]) -> None:
        self.labels = folder / YOLO_LABELS
        self.labels.mkdir(parents=True, exist_ok=True)

    def add(self, sample: dict[str, Any], image: str, boxes: Sequence[tuple[int, Box]]) -> None:
        lines = [yolo_line(index, box, sample["width"], sample["height"]) for index, box in boxes]
        text = "".join(line + "\n" for line in lines)
        (self.labels / f"{PurePosixPath(image).stem}.txt").write_text(text, encoding="utf-8")

    def close(self) -> None:
        pass


class LabelStudioWriter:
    """tasks.json: Label Studio's task list, each photo one task whose annotation holds
    the verified boxes (an empty result: verified clean)."""

    def __init__(self, folder: Path, classes: Sequence[str], info: dict[str, Any]) -> None:
        self.path = folder / LABELSTUDIO_FILE
        self.classes = list(classes)
        self._file: IO[str] = self.path.open("w", encoding="utf-8")
        self._file.write("[\n")
        self._tasks = 0

    def add(self, sample: dict[str, Any], image: str, boxes: Sequence[tuple[int, Box]]) -> None:
        self._tasks += 1
        width, height = sample["width"], sample["height"]
        result = [
            {"id": labelstudio_region_id(sample["id"], n), "type": "rectanglelabels",
             "from_name": "label", "to_name": "image", "original_width": width,
             "original_height": height, "image_rotation": 0,
             "value": labelstudio_value(box, width, height, self.classes[index])}
            for n, (index, box) in enumerate(boxes)
        ]  # fmt: skip
        task = {"id": self._tasks,
                "data": {"image": image, "loupe_sample": sample["id"],
                         "inspection_id": sample["inspection_id"], "sha256": sample["sha256"]},
                "annotations": [{"result": result, "ground_truth": True}]}  # fmt: skip
        prefix = "" if self._tasks == 1 else ",\n"
        self._file.write(prefix + json.dumps(task, ensure_ascii=False))

    def close(self) -> None:
        self._file.write("\n]\n")
        self._file.close()


WRITERS: dict[str, type[CocoWriter] | type[YoloWriter] | type[LabelStudioWriter]] = {
    "coco": CocoWriter,
    "yolo": YoloWriter,
    "labelstudio": LabelStudioWriter,
}


def open_writer(
    fmt: str, folder: Path, classes: Sequence[str], info: dict[str, Any]
) -> FormatWriter:
    return WRITERS[fmt](folder, classes, info)


def dataset_files(fmt: str, out: Path, classes: Sequence[str], splits: Sequence[str]) -> None:
    """The files at the top of an export that describe all of it."""
    if fmt == "yolo":
        (out / "data.yaml").write_text(yolo_data_yaml(classes, splits), encoding="utf-8")
    elif fmt == "labelstudio":
        (out / "labeling_config.xml").write_text(labeling_config(classes), encoding="utf-8")


def yolo_data_yaml(classes: Sequence[str], splits: Sequence[str]) -> str:
    """Ultralytics' dataset file, paths relative to it (`path: .`). Without splits every
    photo is both train and val: Ultralytics needs both named."""
    lines = ["# Written by `loupe export yolo`: what inspectors verified.", "path: ."]
    if any(splits):
        lines += [f"{split}: {split}/{IMAGES}" for split in splits]
    else:
        lines += [f"train: {IMAGES}", f"val: {IMAGES}"]
    lines += [f"nc: {len(classes)}", "names:"]
    # JSON strings are YAML double-quoted scalars: any class name stays one string.
    lines += [f"  {i}: {json.dumps(name, ensure_ascii=False)}" for i, name in enumerate(classes)]
    return "\n".join(lines) + "\n"


def labeling_config(classes: Sequence[str]) -> str:
    """A Label Studio labeling config whose names match the tasks' results."""
    labels = "".join(f"    <Label value={quoteattr(name)}/>\n" for name in classes)
    return (
        "<View>\n"
        '  <Image name="image" value="$image"/>\n'
        '  <RectangleLabels name="label" toName="image">\n'
        f"{labels}"
        "  </RectangleLabels>\n"
        "</View>\n"
    )
