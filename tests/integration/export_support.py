"""Verified reviews of every kind an export must get right, with what each must export,
and small readers of each format written apart from the exporter.

The seeded items: boxes confirmed, types the inspector changed, a false alarm called
"not a defect", a box drawn on an item the model missed, a clean pass (a verified
negative), a reject without any box (unusable: never exported), a re-review whose new
decision replaced the old boxes, a frozen test item, and an item decided a month ago.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.inspections.tables import Photo
from app.learning.tables import TestSetItem
from app.review.tables import Decision, DecisionRegion, ReviewTask
from app.storage import ObjectStore
from models.training.synthetic import Sample, make_dataset
from tests.integration.learning_support import make_user, seed_item

Boxes = list[tuple[str, tuple[float, float, float, float]]]

DRAWN = ("tear", (5.25, 6.5, 30.75, 40.125))
REPLACED = ("hole", (2.5, 3.5, 20.5, 22.5))


@dataclass
class Seeded:
    # Inspection id -> its boxes as (label, xyxy), sorted: every item an export must hold.
    expected: dict[str, Boxes] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)  # inspection id -> photo hash
    unusable: str = ""  # rejected without a box: never exported
    frozen: str = ""  # in the test set: the "test" split
    old: str = ""  # decided 30 days ago


def planted(sample: Sample) -> Boxes:
    return sorted((a.label, (a.box.x1, a.box.y1, a.box.x2, a.box.y2)) for a in sample.annotations)


def seed_verified(session: Session, store: ObjectStore) -> Seeded:
    """The reviews above, flushed (not committed)."""
    user = make_user(session)
    samples = make_dataset(24, seed=21, size=64)
    defects = iter([s for s in samples if s.annotations])
    clean = next(s for s in samples if not s.annotations)
    seeded = Seeded()

    def expect(item: object, boxes: Boxes) -> str:
        key = str(item.inspection_id)  # type: ignore[attr-defined]
        seeded.expected[key] = sorted(boxes)
        seeded.sha256[key] = item.photo_key.split("/")[-1].split(".")[0]  # type: ignore[attr-defined]
        return key

    sample = next(defects)
    expect(seed_item(session, store, sample, user), planted(sample))
    sample = next(defects)
    wrong = ["hole" if a.label != "hole" else "tear" for a in sample.annotations]
    expect(seed_item(session, store, sample, user, model_types=wrong), planted(sample))
    sample = next(defects)
    expect(seed_item(session, store, sample, user, false_alarm="stain"), planted(sample))
    drawn = seed_item(session, store, next(defects), user, verdict="reject", draw_boxes=False)
    _add_box(session, drawn.decision_id, drawn.inspection_id, DRAWN)
    expect(drawn, [DRAWN])
    expect(seed_item(session, store, clean, user, verdict="pass", draw_boxes=False), [])
    unusable = seed_item(session, store, next(defects), user, verdict="reject", draw_boxes=False)
    seeded.unusable = str(unusable.inspection_id)
    rereviewed = seed_item(session, store, next(defects), user)
    _rereview(session, rereviewed.decision_id, user.id)
    expect(rereviewed, [REPLACED])
    sample = next(defects)
    frozen = seed_item(session, store, sample, user)
    session.add(TestSetItem(inspection_id=frozen.inspection_id))
    seeded.frozen = expect(frozen, planted(sample))
    sample = next(defects)
    old = seed_item(session, store, sample, user, decided_at=utcnow() - timedelta(days=30))
    seeded.old = expect(old, planted(sample))
    session.flush()
    return seeded


def _photo_id(session: Session, inspection_id: object) -> int:
    return session.scalars(select(Photo.id).where(Photo.inspection_id == inspection_id)).one()


def _add_box(
    session: Session, decision_id: int, inspection_id: object, box: tuple[str, tuple]
) -> None:
    label, (x1, y1, x2, y2) = box
    session.add(DecisionRegion(decision_id=decision_id, region_id=None,
                               photo_id=_photo_id(session, inspection_id), x1=x1, y1=y1,
                               x2=x2, y2=y2, defect_type=label, severity="moderate",
                               outcome="added"))  # fmt: skip
    session.flush()


def _rereview(session: Session, decision_id: int, user_id: int) -> None:
    """A lead sent the item back; the new decision, in effect, has one drawn box only."""
    first = session.get_one(Decision, decision_id)
    task = session.get_one(ReviewTask, first.review_task_id)
    second = Decision(review_task_id=task.id, inspection_id=first.inspection_id,
                      user_id=user_id, verdict="reject", attempt=1, supersedes_id=first.id,
                      created_at=first.created_at + timedelta(minutes=1))  # fmt: skip
    session.add(second)
    session.flush()
    _add_box(session, second.id, first.inspection_id, REPLACED)
    task.decision_id = second.id
    session.flush()


# --- readers, one per format, that know only the format ------------------------------------


def _item(file_name: str) -> str:
    """The inspection id in an exported photo's name (<uuid>_<position>.<ext>)."""
    return Path(file_name).stem.rsplit("_", 1)[0]


def read_coco(folder: Path) -> tuple[dict[str, Boxes], list[str]]:
    """(item -> boxes, class names in id order), through pycocotools."""
    from pycocotools.coco import COCO

    coco = COCO(str(folder / "annotations.json"))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    found: dict[str, Boxes] = {}
    for image in coco.loadImgs(coco.getImgIds()):
        assert (folder / image["file_name"]).is_file()
        boxes = []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            x, y, w, h = ann["bbox"]
            boxes.append((names[ann["category_id"]], (x, y, x + w, y + h)))
        found[_item(image["file_name"])] = sorted(boxes)
    return found, [names[k] for k in sorted(names)]


def read_yolo(folder: Path, names: dict[int, str]) -> dict[str, Boxes]:
    """item -> boxes of one images/ + labels/ folder; sizes from the photos themselves."""
    found: dict[str, Boxes] = {}
    for image in sorted((folder / "images").iterdir()):
        with Image.open(image) as opened:
            width, height = opened.size
        boxes = []
        for line in (folder / "labels" / f"{image.stem}.txt").read_text().splitlines():
            index, cx, cy, w, h = line.split()
            x, y = float(cx) * width, float(cy) * height
            bw, bh = float(w) * width, float(h) * height
            boxes.append((names[int(index)], (x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2)))
        found[_item(image.name)] = sorted(boxes)
    return found


def yolo_names(root: Path) -> tuple[dict[int, str], dict[str, str]]:
    """data.yaml's class names and the image folder of each split it names."""
    data = yaml.safe_load((root / "data.yaml").read_text())
    return data["names"], {k: data[k] for k in ("train", "val", "test") if k in data}


def read_labelstudio(folder: Path) -> dict[str, Boxes]:
    found: dict[str, Boxes] = {}
    for task in json.loads((folder / "tasks.json").read_text()):
        assert (folder / task["data"]["image"]).is_file()
        boxes = []
        for result in task["annotations"][0]["result"]:
            v, w, h = result["value"], result["original_width"], result["original_height"]
            x, y = v["x"] / 100 * w, v["y"] / 100 * h
            box = (x, y, x + v["width"] / 100 * w, y + v["height"] / 100 * h)
            boxes.append((v["rectanglelabels"][0], box))
        found[_item(task["data"]["image"])] = sorted(boxes)
    return found


def read_any(fmt: str, folder: Path) -> dict[str, Boxes]:
    """item -> boxes of one export folder (a whole export, or one split of it)."""
    if fmt == "coco":
        return read_coco(folder)[0]
    if fmt == "yolo":
        root = folder if (folder / "data.yaml").exists() else folder.parent
        return read_yolo(folder, yolo_names(root)[0])
    return read_labelstudio(folder)


def photo_hashes(folder: Path) -> dict[str, str]:
    """item -> sha256 of its exported photo file."""
    return {_item(p.name): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (folder / "images").iterdir()}  # fmt: skip


def same_boxes(found: dict[str, Boxes], expected: dict[str, Boxes], tolerance: float) -> bool:
    """The same items with the same labels, each corner within `tolerance` pixels."""
    if found.keys() != expected.keys():
        return False
    for item, boxes in expected.items():
        if [label for label, _ in found[item]] != [label for label, _ in boxes]:
            return False
        for (_, a), (_, b) in zip(found[item], boxes, strict=True):
            if max(abs(p - q) for p, q in zip(a, b, strict=True)) > tolerance:
                return False
    return True
