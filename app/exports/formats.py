"""The pure parts of the export formats: the class list, file names and box conversions.

Pixel convention (the one DecisionRegion stores): a box is (x1, y1, x2, y2) in float
pixels of the stored photo, x to the right and y down, with (0, 0) the top-left corner of
the top-left pixel, so a box over a whole W x H photo is (0, 0, W, H). Each format
converts from it exactly once, here:

- COCO: [x, y, width, height] in the same float pixels.
- YOLO: "class cx cy w h", each normalised by the photo's width or height and written
  with YOLO_DECIMALS decimals.
- Label Studio: x, y, width, height in percent of the photo, with original_width and
  original_height beside them; JSON keeps the full float.

Reading an export back gives every box within ROUND_TRIP_TOLERANCE_PX of the stored one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

FORMATS = ("coco", "yolo", "labelstudio", "instructions")
# The formats of boxes on photos; "instructions" is the classifier's chat JSONL of crops.
BOX_FORMATS = ("coco", "yolo", "labelstudio")
NORMAL = "normal"  # "not a defect": never a box class
# A normalised value written with 8 decimals is off by at most 5e-9; a corner read back
# (centre minus half the size) by at most 7.5e-9 of the photo's side: under 0.001 px for
# photos up to 100,000 px wide. 6 decimals would already miss 0.001 px at 2,000 px.
YOLO_DECIMALS = 8
ROUND_TRIP_TOLERANCE_PX = 0.001

Box = tuple[float, float, float, float]


def class_list(taxonomy_keys: Sequence[str], labels: Iterable[str]) -> tuple[list[str], list[str]]:
    """(classes, unknown): the taxonomy's defect types in the taxonomy's order, "normal"
    left out, then the labels the data has that the taxonomy no longer has, sorted.

    The taxonomy's order makes class ids stable across exports whatever the data holds;
    a type a site has since removed keeps its boxes (at the end) instead of turning a
    verified defect into background.
    """
    classes = [key for key in taxonomy_keys if key != NORMAL]
    unknown = sorted({label for label in labels} - set(classes) - {NORMAL})
    return classes + unknown, unknown


def clip_box(box: Sequence[float], width: int, height: int) -> Box | None:
    """The box inside the photo; None when nothing of it is (a box is never empty)."""
    x1, y1 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x2, y2 = min(float(width), float(box[2])), min(float(height), float(box[3]))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def photo_boxes(
    sample: dict[str, Any], class_index: dict[str, int]
) -> tuple[list[tuple[int, Box]], int, int]:
    """(class index, box inside the photo) of a manifest sample's boxes, and how many were
    cut at the photo's edge and how many lay wholly outside it (left out)."""
    kept: list[tuple[int, Box]] = []
    clipped = dropped = 0
    for box in sample["boxes"]:
        if box["label"] == NORMAL:
            continue  # "not a defect" is no box (manifests leave it out already)
        inside = clip_box(box["box"], sample["width"], sample["height"])
        if inside is None:
            dropped += 1
            continue
        clipped += inside != tuple(float(v) for v in box["box"])
        kept.append((class_index[box["label"]], inside))
    return kept, clipped, dropped


def coco_bbox(box: Box) -> list[float]:
    """COCO's [x, y, width, height] in pixels."""
    x1, y1, x2, y2 = box
    return [x1, y1, x2 - x1, y2 - y1]


def yolo_line(class_index: int, box: Box, width: int, height: int) -> str:
    """One line of a YOLO label file: class, then centre and size normalised to 0..1."""
    x1, y1, x2, y2 = box
    values = ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width,
              (y2 - y1) / height)  # fmt: skip
    return " ".join([str(class_index), *(f"{v:.{YOLO_DECIMALS}f}" for v in values)])


def labelstudio_value(box: Box, width: int, height: int, label: str) -> dict[str, Any]:
    """A rectanglelabels result's `value`: the box in percent of the photo."""
    x1, y1, x2, y2 = box
    return {
        "x": x1 / width * 100,
        "y": y1 / height * 100,
        "width": (x2 - x1) / width * 100,
        "height": (y2 - y1) / height * 100,
        "rotation": 0,
        "rectanglelabels": [label],
    }


def labelstudio_region_id(sample_id: str, index: int) -> str:
    """A result's id: Label Studio wants one per region, stable across exports."""
    return hashlib.sha256(f"{sample_id}#{index}".encode()).hexdigest()[:10]


def image_name(sample_id: str, key: str, sniffed: str = "") -> str:
    """The photo's file name in an export: its inspection and position ("<uuid>_0.png").

    The extension is the stored key's (uploads are stored as <hash>.<format>), else the
    sniffed format's: a name without one is not found by YOLO's or COCO's tools.
    """
    suffix = PurePosixPath(key).suffix.lower() or (f".{sniffed}" if sniffed else "")
    return sample_id.replace("/", "_") + suffix


def split_folder(split: str | None) -> str:
    """Where a split's files go inside the export: its own folder, or the top."""
    return split or ""
