"""The common record every reader yields, and how its boxes become pixels.

Pixel convention (DecisionRegion's, and what app.exports writes): a box is (x1, y1, x2, y2)
in float pixels of the upright photo (EXIF orientation applied: the width and height
check_image reports), origin at the top-left corner of the top-left pixel, x2 and y2 the
right and bottom edges. A box over pixel columns 0..9 is x1=0, x2=10. Conversions:

- YOLO (cx, cy, w, h as fractions): x1 = (cx - w/2) * width, x2 = (cx + w/2) * width.
- COCO bbox [x, y, w, h] in pixels: x1 = x, x2 = x + w.
- Label Studio x, y, width, height in percent: x1 = x/100 * width, x2 = (x + width)/100 * width.

No rounding: the floats are stored as computed. A box that reaches past the photo by at
most EDGE_TOLERANCE_PX is clipped to it (exporters round); further out, or without
area, the image's labels are unusable and the image is refused with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Units = Literal["pixels", "fraction"]
FORMATS = ("yolo", "coco", "labelstudio", "folders")
EDGE_TOLERANCE_PX = 1.0


class SourceError(ValueError):
    """The export cannot be read at all: nothing is imported; the message says what to fix."""


@dataclass(frozen=True)
class SourceBox:
    """One box as the export gives it: its class name as written, its corners in the
    record's units, a severity when the export has one, and a note the summary counts
    ("crowd", "rotated", "polygon": how the export's shape became this box)."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    severity: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class SourceImage:
    """One image of the export and what its labels say.

    `labelled` is False when the export says nothing about the image (a YOLO image with no
    .txt, a Label Studio task nobody annotated): that is not "no defect". An empty label
    file, a COCO image without annotations and a submitted annotation without regions
    are labelled, with no box: a clean garment. `label` is an image-level class (a class
    folder, a Label Studio choice). `problem` says why the labels cannot be used (the
    image is refused then); `unknown_ids` are YOLO class ids outside the names.
    """

    path: Path
    name: str  # relative to the export's root, posix: what messages and external ids show
    split: str | None = None
    boxes: tuple[SourceBox, ...] = ()
    units: Units = "pixels"
    size: tuple[int, int] | None = None  # (width, height) the labels were made on, if given
    label: str | None = None
    severity: str | None = None  # of the image-level label, when the export has one
    labelled: bool = True
    problem: str | None = None
    unknown_ids: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())  # image-level remarks the summary counts


@dataclass(frozen=True)
class PixelBox:
    """A box in the pixel convention above, with its source class name."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    severity: str | None = None


class BadBox(ValueError):
    """A box that cannot be placed on its photo; the message names the box."""


def in_pixels(image: SourceImage, width: int, height: int) -> list[PixelBox]:
    """The record's boxes on a photo of width x height (upright), or BadBox."""
    if image.size is not None and image.size != (width, height):
        w, h = image.size
        hint = (
            " (EXIF rotation: labelled on the unrotated photo?)"
            if (h, w) == (width, height)
            else ""
        )
        if image.units == "pixels" or hint:
            raise BadBox(
                f"the labels were made on a {w}x{h} image, the file is {width}x{height}{hint}"
            )
    sx, sy = (width, height) if image.units == "fraction" else (1, 1)
    return [_placed(box, sx, sy, width, height) for box in image.boxes]


def _placed(box: SourceBox, sx: float, sy: float, width: int, height: int) -> PixelBox:
    x1, x2 = box.x1 * sx, box.x2 * sx
    y1, y2 = box.y1 * sy, box.y2 * sy
    corners = (x1, y1, x2, y2)
    shown = f"{box.label} [{', '.join(f'{v:.1f}' for v in corners)}]"
    if not all(math.isfinite(v) for v in corners):
        raise BadBox(f"box {box.label} has a coordinate that is not a number")
    far = EDGE_TOLERANCE_PX
    if min(x1, y1) < -far or x2 > width + far or y2 > height + far:
        raise BadBox(f"box {shown} reaches outside the {width}x{height} image")
    x1, x2 = max(0.0, x1), min(float(width), x2)
    y1, y2 = max(0.0, y1), min(float(height), y2)
    if x2 <= x1 or y2 <= y1:
        raise BadBox(f"box {shown} has no area")
    return PixelBox(box.label, x1, y1, x2, y2, box.severity)
