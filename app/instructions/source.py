"""Verified region answers read from the database, the frozen test set left out.

The answers are the verified crops the classifier is judged on (app.learning.crops), with
what the model said about each region (Region, both steps' evidence) and the decision's
tags and note. Crops of a frozen test item are never read: a model must not be trained
on what it will be judged on.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.inspections.tables import Region
from app.instructions.answers import RegionAnswer, model_answer
from app.learning.crops import verified_crops
from app.learning.tables import TestSetItem
from app.review.tables import Decision, DecisionRegion


def _in_test_set() -> ColumnElement[bool]:
    return Decision.inspection_id.in_(select(TestSetItem.inspection_id))


def region_answers(*, session: Session) -> list[RegionAnswer]:
    """Every verified region answer outside the frozen test set, by crop id."""
    query = (
        verified_crops()
        .add_columns(
            DecisionRegion.outcome,
            Decision.tags,
            Decision.note,
            Region.defect_type.label("model_type"),
            Region.severity.label("model_severity"),
            Region.evidence,
        )
        .outerjoin(Region, Region.id == DecisionRegion.region_id)
        .where(~_in_test_set())
        .order_by(DecisionRegion.id)
    )
    return [
        RegionAnswer(
            crop_id=row.id,
            decision_id=row.decision_id,
            inspection_id=str(row.inspection_id),
            photo_key=row.object_key,
            photo_sha256=row.content_hash,
            box=(row.x1, row.y1, row.x2, row.y2),
            outcome=row.outcome,
            defect_type=row.defect_type,
            severity=row.severity,
            model=model_answer(row.model_type, row.model_severity, row.evidence),
            tags=tuple(row.tags or ()),
            note=row.note or "",
        )
        for row in session.execute(query)
    ]


def count_frozen_answers(*, session: Session) -> int:
    """Verified region answers of frozen test items: what a build leaves out."""
    inner = verified_crops().where(_in_test_set()).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)
