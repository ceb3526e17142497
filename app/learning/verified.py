"""Verified samples: what the learning loop may learn from, defined once, in SQL.

A verified item is an inspection whose decision in effect (`review_task.decision_id`)
is a usable label. Its human boxes are the decision's region answers of a defect type
(not "normal"). An item the human passed without any box is a valid negative: a garment
known to be clean. An item rejected without any box is not usable: the human saw a
defect but did not say where, so its photos can be neither positives nor negatives.
A sample is one photo of a verified item with the boxes drawn on it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from app.inspections.tables import Photo
from app.policy.metrics import NOT_A_DEFECT
from app.review.tables import Decision, DecisionRegion, ReviewTask


@dataclass(frozen=True)
class HumanBox:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class VerifiedPhoto:
    """One sample: a photo of a verified item and the boxes the human left on it."""

    inspection_id: uuid.UUID
    decision_id: int
    photo_id: int
    position: int
    object_key: str
    content_hash: str
    width: int
    height: int
    boxes: list[HumanBox] = field(default_factory=list)


def verified_decisions() -> Select[int, uuid.UUID]:
    """(decision id, inspection id) of every decision in effect that is a usable label."""
    has_box = exists().where(
        DecisionRegion.decision_id == Decision.id, DecisionRegion.defect_type != NOT_A_DEFECT
    )
    return (
        select(Decision.id, Decision.inspection_id)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .where(or_(Decision.verdict == "pass", has_box))
    )


def verified_photos(*, session: Session) -> list[VerifiedPhoto]:
    """Every sample with its human boxes, ordered by inspection and photo position."""
    decisions = verified_decisions().subquery()
    photos = session.execute(
        select(
            decisions.c.inspection_id,
            decisions.c.id,
            Photo.id,
            Photo.position,
            Photo.object_key,
            Photo.content_hash,
            Photo.width,
            Photo.height,
        )
        .join(Photo, Photo.inspection_id == decisions.c.inspection_id)
        .order_by(decisions.c.inspection_id, Photo.position)
    ).all()
    boxes: defaultdict[int, list[HumanBox]] = defaultdict(list)
    for row in session.execute(
        select(
            DecisionRegion.photo_id,
            DecisionRegion.defect_type,
            DecisionRegion.x1,
            DecisionRegion.y1,
            DecisionRegion.x2,
            DecisionRegion.y2,
        )
        .join(decisions, decisions.c.id == DecisionRegion.decision_id)
        .where(DecisionRegion.defect_type != NOT_A_DEFECT)
        .order_by(DecisionRegion.id)
    ):
        boxes[row.photo_id].append(HumanBox(row.defect_type, row.x1, row.y1, row.x2, row.y2))
    return [
        VerifiedPhoto(
            inspection_id=item,
            decision_id=decision,
            photo_id=photo,
            position=position,
            object_key=key,
            content_hash=content_hash,
            width=width,
            height=height,
            boxes=boxes.get(photo, []),
        )
        for item, decision, photo, position, key, content_hash, width, height in photos
    ]


def count_new_samples(*, session: Session, after_decision_id: int | None) -> int:
    """Samples (photos) of verified decisions newer than the given decision."""
    decisions = verified_decisions()
    if after_decision_id is not None:
        decisions = decisions.where(Decision.id > after_decision_id)
    inner = decisions.subquery()
    return int(
        session.scalar(
            select(func.count())
            .select_from(inner)
            .join(Photo, Photo.inspection_id == inner.c.inspection_id)
        )
        or 0
    )
