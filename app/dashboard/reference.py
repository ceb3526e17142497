"""The models against the labels an import brought along (`loupe import --as inspect`).

A site that adopts Loupe sends its labeled history through the models and keeps the
labels on each inspection (`Inspection.reference_labels`, app.imports.writer). The
dashboard's "against imported labels" section reads them back: where the models routed
items the labels call defective (an automatic pass is an escape) and clean (an automatic
reject is a false reject), and, per defect type, how many labeled boxes a model region
found: the same type at IoU >= MATCH_IOU ("found"), or any defect type there ("located").
An image-level label (a class folder, a Label Studio choice) has no box: a region of its
type anywhere on the item finds it.

Only routed items count, by the week they were routed in. `compare` is pure; `section`
reads one week.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.inspections.tables import Inspection, Photo, Region
from app.policy.disagreement import Box, iou

MATCH_IOU = 0.5
ROUTES = ("auto_pass", "auto_reject", "review")
NORMAL = "normal"


@dataclass(frozen=True)
class ModelRegion:
    photo: int  # the photo's position in the inspection
    defect_type: str
    box: Box


@dataclass(frozen=True)
class LabeledBox:
    photo: int | None  # None: an image-level label, anywhere on the item
    defect_type: str
    box: Box | None


@dataclass(frozen=True)
class Comparison:
    route: str
    defective: bool  # what the labels say
    boxes: tuple[tuple[str, bool, bool], ...]  # (type, found, located) per labeled box


def labeled_boxes(reference: dict[str, Any]) -> list[LabeledBox]:
    """The defects the labels name: their boxes, or the image-level label when none."""
    boxes = [
        LabeledBox(int(b["photo"]), str(b["type"]), _box(b["box"]))
        for b in reference.get("boxes") or ()
        if b.get("type") != NORMAL
    ]
    label = reference.get("label")
    if not boxes and label and label != NORMAL:
        boxes = [LabeledBox(None, str(label), None)]
    return boxes


def _box(corners: Sequence[Any]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in corners)
    return (x1, y1, x2, y2)


def compare(route: str, regions: Sequence[ModelRegion], reference: dict[str, Any]) -> Comparison:
    """One item: its route, whether the labels call it defective, and each labeled box's
    fate among the model's defect regions."""
    defects = [r for r in regions if r.defect_type != NORMAL]
    judged = []
    for labeled in labeled_boxes(reference):
        near = [r for r in defects if _overlaps(r, labeled)]
        found = any(r.defect_type == labeled.defect_type for r in near)
        judged.append((labeled.defect_type, found, bool(near)))
    return Comparison(route, bool(judged), tuple(judged))


def _overlaps(region: ModelRegion, labeled: LabeledBox) -> bool:
    if labeled.box is None or labeled.photo is None:
        return True
    return region.photo == labeled.photo and iou(region.box, labeled.box) >= MATCH_IOU


def summarise(comparisons: Iterable[Comparison]) -> dict[str, Any]:
    """The section's figures (a JSON-ready dict, like the rest of the report)."""
    routes = {kind: dict.fromkeys(ROUTES, 0) for kind in ("defective", "clean")}
    boxes: Counter[str] = Counter()
    found: Counter[str] = Counter()
    located: Counter[str] = Counter()
    for c in comparisons:
        routes["defective" if c.defective else "clean"][c.route] += 1
        for defect_type, was_found, was_located in c.boxes:
            boxes[defect_type] += 1
            found[defect_type] += was_found
            located[defect_type] += was_located
    defective, clean = sum(routes["defective"].values()), sum(routes["clean"].values())
    return {
        "items": defective + clean,
        "defective": {"items": defective, **routes["defective"]},
        "clean": {"items": clean, **routes["clean"]},
        "escaped_share": _share(routes["defective"]["auto_pass"], defective),
        "false_reject_share": _share(routes["clean"]["auto_reject"], clean),
        "per_type": [
            {
                "type": t,
                "boxes": n,
                "found": found[t],
                "located": located[t],
                "recall": _share(found[t], n),
            }
            for t, n in sorted(boxes.items(), key=lambda kv: (-kv[1], kv[0]))
        ],  # fmt: skip
    }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def section(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """The week's imported items with labels, routed in [start, end), compared."""
    items = session.execute(
        select(Inspection.id, Inspection.route, Inspection.reference_labels).where(
            Inspection.reference_labels.is_not(None),
            Inspection.routed_at >= start,
            Inspection.routed_at < end,
            Inspection.route.in_(ROUTES),
        )
    ).all()
    regions: dict[Any, list[ModelRegion]] = {row.id: [] for row in items}
    if regions:
        for inspection_id, position, defect_type, x1, y1, x2, y2 in session.execute(
            select(Region.inspection_id, Photo.position, Region.defect_type,
                   Region.x1, Region.y1, Region.x2, Region.y2)
            .join(Photo, Photo.id == Region.photo_id)
            .where(Region.inspection_id.in_(list(regions)))
        ).tuples():  # fmt: skip
            regions[inspection_id].append(ModelRegion(position, defect_type, (x1, y1, x2, y2)))
    return summarise(
        compare(str(row.route), regions[row.id], row.reference_labels) for row in items
    )
