"""The error cases behind one pattern: the gallery the ML team looks at before acting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from app.auth.tables import User
from app.dashboard.weeks import Week
from app.feedback.tables import ErrorCase
from app.inspections.tables import Photo
from app.policy.patterns import Pattern
from app.review.tables import Decision, ReviewTask

MAX_EXAMPLES = 48


@dataclass(frozen=True)
class Example:
    error_case_id: int
    decided_at: datetime
    inspector: str
    note: str
    photo_id: int | None
    photo_width: int | None
    photo_height: int | None
    box: tuple[float, float, float, float] | None
    model_label: str | None
    human_label: str | None
    from_value: str | None
    to_value: str | None
    tags: list[str]


def pattern_examples(
    *, session: Session, week: Week, timezone: str, pattern: Pattern, limit: int = MAX_EXAMPLES
) -> list[Example]:
    """The week's region cases of `pattern`, newest first, from decisions still in effect."""
    start, end = week.bounds(timezone)
    e = ErrorCase
    query = (
        select(
            e.id,
            e.decided_at,
            User.username,
            Decision.note,
            e.photo_id,
            Photo.width,
            Photo.height,
            e.x1,
            e.y1,
            e.x2,
            e.y2,
            e.model_label,
            e.human_label,
            e.from_value,
            e.to_value,
            e.tags,
        )  # fmt: skip
        .join(ReviewTask, ReviewTask.decision_id == e.decision_id)
        .join(Decision, Decision.id == e.decision_id)
        .join(User, User.id == Decision.user_id)
        .outerjoin(Photo, Photo.id == e.photo_id)
        .where(
            e.decided_at >= start,
            e.decided_at < end,
            e.scope == "region",
            e.kind == pattern.kind,
            _same(e.model_label, pattern.model_label),
            _same(e.human_label, pattern.human_label),
            _same(e.field, pattern.field),
        )
        .order_by(e.decided_at.desc(), e.id.desc())
        .limit(limit)
    )
    if pattern.tag is None:
        query = query.where(func.cardinality(e.tags) == 0)
    else:
        query = query.where(e.tags.contains([pattern.tag]))
    examples = []
    for row in session.execute(query):
        box = None if row.x1 is None else (row.x1, row.y1, row.x2, row.y2)
        examples.append(
            Example(
                row.id,
                row.decided_at,
                row.username,
                row.note,
                row.photo_id,
                row.width,
                row.height,
                box,
                row.model_label,
                row.human_label,
                row.from_value,
                row.to_value,
                list(row.tags),
            )  # fmt: skip
        )
    return examples


def _same(column: QueryableAttribute[str | None], value: str | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value
