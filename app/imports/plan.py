"""What an import would do and did: the census of the labels, each image's labels in
taxonomy terms, and the tally the summary prints. Pure: plain values in, plain values out.

The census reads labels only (no image is opened), so that everything that would stop the
import (unmapped classes, unknown class ids, a split without labels) is found before the
first write. The tally counts what happened to each image once it was read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from app.imports.mapping import ClassCount, ClassMap
from app.imports.records import BadBox, PixelBox, SourceImage, in_pixels
from models.taxonomy import NORMAL

Mode = Literal["verified", "inspect"]
MODES: dict[str, Mode] = {"verified": "verified", "inspect": "inspect"}
EXAMPLES = 3  # files named per problem in a message
NOTES = {
    "crowd": "COCO crowd annotations (iscrowd 1) kept as one box of their class each",
    "rotated": "rotated rectangles turned into the upright box around them",
    "polygon": "polygons turned into the box around them",
    "latest_annotation": "images annotated several times: the latest annotation was used",
}


@dataclass
class Census:
    """The labels of an export, counted before any image is read."""

    images: int = 0
    splits: Counter[str] = field(default_factory=Counter)
    labelled: int = 0
    boxes: int = 0
    classes: dict[str, ClassCount] = field(default_factory=dict)
    unlabelled: Counter[str] = field(default_factory=Counter)  # by split
    unlabelled_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    unknown_ids: dict[int, ClassCount] = field(default_factory=dict)
    unknown_id_files: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    problems: int = 0


def split_key(split: str | None) -> str:
    return split or "-"


def take_census(records: Iterable[SourceImage]) -> Census:
    census = Census()
    for record in records:
        census.images += 1
        split = split_key(record.split)
        census.splits[split] += 1
        census.problems += record.problem is not None
        if not record.labelled:
            census.unlabelled[split] += 1
            if len(census.unlabelled_examples[split]) < EXAMPLES:
                census.unlabelled_examples[split].append(record.name)
            continue
        census.labelled += 1
        census.boxes += len(record.boxes)
        names = [box.label for box in record.boxes]
        for name in names:
            census.classes.setdefault(name, ClassCount()).boxes += 1
        for name in {*names, *([record.label] if record.label else [])}:
            census.classes.setdefault(name, ClassCount()).images += 1
        for class_id, n in Counter(record.unknown_ids).items():
            count = census.unknown_ids.setdefault(class_id, ClassCount())
            count.boxes, count.images = count.boxes + n, count.images + 1
            if len(census.unknown_id_files[class_id]) < EXAMPLES:
                census.unknown_id_files[class_id].append(record.name)
    return census


def default_mode(census: Census) -> Mode:
    """An export with labels is ground truth; a folder without any is photos to inspect."""
    return "verified" if census.labelled else "inspect"


class Refused(ValueError):
    """An image that is not imported; the message is the reason the summary shows."""


class Skipped(ValueError):
    """An image whose only label is a class left out with --skip-unknown."""


@dataclass(frozen=True)
class LabelledBox:
    """A box in taxonomy terms, in the pixel convention of app.imports.records."""

    defect_type: str
    severity: str | None
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Labels:
    """An image's labels in taxonomy terms. An image-level label without boxes becomes
    one box over the whole photo (a crop of that class); no box at all is a clean garment."""

    boxes: tuple[LabelledBox, ...]
    label: str | None
    skipped_boxes: tuple[str, ...] = ()  # source classes of boxes left out (--skip-unknown)

    @property
    def verdict(self) -> str:
        """Reject when a defect is marked. The severity, and with it the site's decision
        table, is usually unknown for history, so a marked defect is taken as a reject."""
        return "reject" if any(b.defect_type != NORMAL for b in self.boxes) else "pass"


def labels_of(
    record: SourceImage,
    width: int,
    height: int,
    class_map: ClassMap,
    *,
    mode: Mode,
    unlabeled_is_negative: bool,
) -> Labels | None:
    """The record's labels on its (upright) photo; None when it has none and may go to
    the models without them (--as inspect). Raises Refused or Skipped."""
    if record.problem:
        raise Refused(record.problem)
    if not record.labelled:
        if unlabeled_is_negative:
            return Labels((), None)
        if mode == "inspect":
            return None
        raise Refused(
            "no labels (the export says nothing about this image); if unlabelled images "
            "are clean garments, pass --unlabeled-is-negative"
        )
    try:
        placed = in_pixels(record, width, height)
    except BadBox as exc:
        raise Refused(str(exc)) from exc
    boxes, skipped = _mapped(placed, class_map)
    label = class_map.target(record.label) if record.label else None
    if record.label and label is None and not boxes:
        raise Skipped(record.label)
    if label == NORMAL and any(b.defect_type != NORMAL for b in boxes):
        raise Refused(f"labelled {record.label} (no defect) but it has defect boxes")
    if label is not None and not placed:
        severity = None if label == NORMAL else record.severity
        boxes.append(LabelledBox(label, severity, 0.0, 0.0, float(width), float(height)))
    return Labels(tuple(boxes), label, skipped)


def _mapped(
    placed: list[PixelBox], class_map: ClassMap
) -> tuple[list[LabelledBox], tuple[str, ...]]:
    """The boxes in taxonomy terms, and the source classes of those left out."""
    boxes, skipped = [], []
    for box in placed:
        target = class_map.target(box.label)
        if target is None:
            skipped.append(box.label)
            continue
        severity = None if target == NORMAL else box.severity
        boxes.append(LabelledBox(target, severity, box.x1, box.y1, box.x2, box.y2))
    return boxes, tuple(skipped)


def census_lines(census: Census, class_map: ClassMap | None) -> list[str]:
    """The export as the census saw it: images per split, classes and where they go."""
    splits = ", ".join(f"{k} {n}" for k, n in sorted(census.splits.items()))
    lines = [f"{census.images} images ({splits}), {census.labelled} labelled, {census.boxes} boxes"]
    if census.classes:
        lines.append("classes (boxes, images) -> defect type:")
        width = max(len(name) for name in census.classes)
        for name, count in sorted(census.classes.items()):
            target = "?"
            if class_map is not None:
                target = class_map.target(name) or "left out (--skip-unknown)"
            lines.append(f"  {name:<{width}}  {count.boxes:>6} {count.images:>6}  -> {target}")
    if class_map is not None and class_map.unused:
        lines.append(f"--map names classes the export does not have: {', '.join(class_map.unused)}")
    return lines


def label_stops(census: Census, mode: Mode, unlabeled_is_negative: bool) -> list[str]:
    """Splits whose images have no labels at all, when the import wants them as ground truth."""
    if mode != "verified" or unlabeled_is_negative:
        return []
    stops = []
    for split, n in sorted(census.unlabelled.items()):
        if n == census.splits[split]:
            examples = ", ".join(census.unlabelled_examples[split])
            stops.append(
                f"split {split}: none of its {n} images has labels (e.g. {examples}). Point "
                "the export at its labels, or pass --unlabeled-is-negative if they are all "
                "clean garments"
            )
    return stops


@dataclass
class Tally:
    """What happened to each image, for the summary."""

    imported: int = 0
    present: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (name, same bytes as)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    skipped: Counter[str] = field(default_factory=Counter)  # image label left out
    skipped_boxes: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)  # boxes per defect type
    clean: int = 0  # imported with no box: clean garments
    without_labels: int = 0  # sent to the models with no reference labels
    notes: Counter[str] = field(default_factory=Counter)

    def count(self, record: SourceImage, labels: Labels | None) -> None:
        """An image that is (or, in a dry run, would be) imported."""
        self.imported += 1
        self.notes.update(record.notes)
        self.notes.update(b.note for b in record.boxes if b.note)
        if labels is None:
            self.without_labels += 1
            return
        self.types.update(b.defect_type for b in labels.boxes)
        self.skipped_boxes.update(labels.skipped_boxes)
        self.clean += not labels.boxes


def summary_lines(tally: Tally, *, dry_run: bool) -> list[str]:
    verb = "would import" if dry_run else "imported"
    head = f"{verb} {tally.imported}, already present {tally.present}, refused {len(tally.refused)}"
    if tally.duplicates:
        head += f", duplicates {len(tally.duplicates)}"
    if tally.skipped:
        head += f", skipped {sum(tally.skipped.values())}"
    lines = [head + (" (dry run: nothing was changed)" if dry_run else "")]
    if tally.types:
        lines.append(
            "  boxes per type: " + ", ".join(f"{k} {n}" for k, n in sorted(tally.types.items()))
        )
    if tally.clean:
        lines.append(f"  clean garments (no box): {tally.clean}")
    if tally.without_labels:
        lines.append(f"  sent to the models without labels: {tally.without_labels}")
    if tally.skipped_boxes:
        left = ", ".join(f"{k} {n}" for k, n in sorted(tally.skipped_boxes.items()))
        lines.append(f"  boxes left out (--skip-unknown): {left}")
    if tally.skipped:
        left = ", ".join(f"{k} {n}" for k, n in sorted(tally.skipped.items()))
        lines.append(f"  images left out (--skip-unknown): {left}")
    for note, n in sorted(tally.notes.items()):
        lines.append(f"  {NOTES.get(note, note)}: {n}")
    lines += [f"  duplicate {name}: the same bytes as {first}" for name, first in tally.duplicates]
    lines += [f"  refused {name}: {reason}" for name, reason in tally.refused]
    return lines
