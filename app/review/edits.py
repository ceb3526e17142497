"""The inspector's changes to the model's regions, from the review form to ground truth.

Pure. The page sends only what the inspector touched, as JSON:
    {"region": 12, "type": "hole", "severity": "severe"}      change a model region
    {"region": 12, "not_defect": true}                          the model was wrong
    {"photo": 3, "box": [x1, y1, x2, y2], "type": "tear", "severity": "minor"}   a missed one
Every model region gets an answer: untouched ones are confirmed as the model said.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.taxonomy import NORMAL

MAX_EDITS = 200
MIN_BOX_PX = 2.0


class InvalidEdits(ValueError):
    """The region edits do not fit this item; nothing was saved."""


@dataclass(frozen=True)
class ModelRegion:
    id: int
    photo_id: int
    box: tuple[float, float, float, float]
    defect_type: str
    severity: str


@dataclass(frozen=True)
class PhotoSize:
    id: int
    width: int
    height: int


@dataclass(frozen=True)
class RegionAnswer:
    """One row of decision_region."""

    region_id: int | None
    photo_id: int
    box: tuple[float, float, float, float]
    defect_type: str
    severity: str | None
    outcome: str  # confirmed | changed | not_defect | added


@dataclass(frozen=True)
class Vocabulary:
    """The defect types and severities a human may choose (from the taxonomy)."""

    types: frozenset[str]
    severities: frozenset[str]


def parse(raw: str) -> list[dict[str, Any]]:
    """The JSON list the page sent; an empty field means "nothing changed"."""
    if not raw.strip():
        return []
    try:
        edits = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidEdits("the region edits are not valid JSON") from exc
    if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
        raise InvalidEdits("the region edits must be a list of objects")
    if len(edits) > MAX_EDITS:
        raise InvalidEdits(f"at most {MAX_EDITS} region edits")
    return edits


def answers(
    edits: list[dict[str, Any]],
    *,
    regions: Sequence[ModelRegion],
    photos: Sequence[PhotoSize],
    vocabulary: Vocabulary,
) -> list[RegionAnswer]:
    """An answer for every model region, then the boxes the human added."""
    by_id = {r.id: r for r in regions}
    changes: dict[int, dict[str, Any]] = {}
    added: list[RegionAnswer] = []
    sizes = {p.id: p for p in photos}
    for edit in edits:
        if "region" in edit:
            region_id = edit["region"]
            if type(region_id) is not int or region_id not in by_id:  # bool is an int too
                raise InvalidEdits(f"region {region_id!r} is not on this item")
            changes[region_id] = edit
        else:
            added.append(_added(edit, sizes, vocabulary))
    kept = [_answer(r, changes.get(r.id), vocabulary) for r in regions]
    return kept + added


def _answer(
    region: ModelRegion, edit: dict[str, Any] | None, vocabulary: Vocabulary
) -> RegionAnswer:
    base = RegionAnswer(
        region.id, region.photo_id, region.box, region.defect_type, region.severity, "confirmed"
    )
    if edit is None:
        return base
    if edit.get("not_defect") is True:
        return RegionAnswer(region.id, region.photo_id, region.box, NORMAL, None, "not_defect")
    # What the model said stands even outside the vocabulary ("normal" after an exception,
    # "unknown" when it failed); only a value the human changed must be one they may choose.
    defect_type = _kept_or_choice(edit.get("type"), region.defect_type, vocabulary.types, "type")
    severity = _kept_or_choice(
        edit.get("severity"), region.severity, vocabulary.severities, "severity"
    )
    if (defect_type, severity) == (region.defect_type, region.severity):
        return base
    return RegionAnswer(region.id, region.photo_id, region.box, defect_type, severity, "changed")


def _added(
    edit: dict[str, Any], sizes: dict[int, PhotoSize], vocabulary: Vocabulary
) -> RegionAnswer:
    photo_id = edit.get("photo")
    photo = sizes.get(photo_id) if type(photo_id) is int else None
    if photo is None:
        raise InvalidEdits(f"photo {edit.get('photo')!r} is not on this item")
    if "type" not in edit:
        raise InvalidEdits("a box you drew needs a defect type")
    defect_type = _choice(edit["type"], vocabulary.types, "type")
    severity = _choice(edit.get("severity"), vocabulary.severities, "severity")
    box = _box(edit.get("box"), photo)
    return RegionAnswer(None, photo.id, box, defect_type, severity, "added")


def _kept_or_choice(value: Any, model: str, allowed: frozenset[str], what: str) -> str:
    return model if value is None or value == model else _choice(value, allowed, what)


def _choice(value: Any, allowed: frozenset[str], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidEdits(f"unknown {what} {value!r}")
    return value


def _box(value: Any, photo: PhotoSize) -> tuple[float, float, float, float]:
    """The drawn box in photo pixels, clipped to the photo; too small a box is refused."""
    if not isinstance(value, list) or len(value) != 4:
        raise InvalidEdits("a drawn box needs four coordinates [x1, y1, x2, y2]")
    try:
        x1, y1, x2, y2 = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise InvalidEdits("box coordinates must be numbers") from exc
    x1, x2 = sorted((_clip(x1, photo.width), _clip(x2, photo.width)))
    y1, y2 = sorted((_clip(y1, photo.height), _clip(y2, photo.height)))
    if x2 - x1 < MIN_BOX_PX or y2 - y1 < MIN_BOX_PX:
        raise InvalidEdits("a drawn box is too small")
    return (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))


def _clip(value: float, limit: int) -> float:
    if value != value:  # NaN
        raise InvalidEdits("box coordinates must be numbers")
    return min(float(limit), max(0.0, value))
