"""The frozen test set: verified items held out from training for good.

It grows only when someone asks (`loupe retrain freeze-test --count N`, or the page), by
items no run was ever queued to train on (app.learning.snapshot.reserve_for_training;
a refused run trains on nothing), chosen by a hash of the inspection id: the
same request on the same data picks the same items, and no person's choice of "easy"
items can flatter a model. Items are never removed, so every model is judged on a set
that only ever grows.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, Select, Text, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db import utcnow
from app.learning.tables import TestSetItem, TrainedItem
from app.learning.verified import verified_decisions


def _eligible() -> tuple[Select[uuid.UUID], ColumnElement[uuid.UUID]]:
    """The inspection ids a freeze may pick (verified, never trained on, not frozen yet),
    and their column: defined once, so the page's count and the freeze cannot disagree."""
    decisions = verified_decisions().subquery()
    item = decisions.c.inspection_id
    query = select(item).where(
        ~select(TrainedItem.inspection_id).where(TrainedItem.inspection_id == item).exists(),
        ~select(TestSetItem.id).where(TestSetItem.inspection_id == item).exists(),
    )
    return query, item


def eligible_items(*, session: Session, limit: int) -> list[uuid.UUID]:
    """Verified items never trained on and not frozen yet, in hash order, at most `limit`."""
    query, item = _eligible()
    order = func.sha256(func.convert_to(cast(item, Text), "UTF8"))
    return list(session.scalars(query.order_by(order).limit(limit)))


def count_eligible(*, session: Session) -> int:
    """How many items a freeze could pick now, counted in the database (the page shows it
    on every load; there may be many)."""
    query, _ = _eligible()
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def freeze_test_items(
    *, session: Session, count: int, user_id: int | None = None, now: datetime | None = None
) -> list[uuid.UUID]:
    """Add up to `count` items to the test set; returns those added (not committed).

    Fewer are added when fewer verified items were never trained on.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    picked = eligible_items(session=session, limit=count)
    if not picked:
        return []
    added_at = now or utcnow()
    rows = [{"inspection_id": i, "added_at": added_at, "added_by_id": user_id} for i in picked]
    added = session.scalars(
        insert(TestSetItem)
        .on_conflict_do_nothing(index_elements=["inspection_id"])
        .returning(TestSetItem.inspection_id),
        rows,
    ).all()
    return list(added)


def size_of_test_set(*, session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(TestSetItem)) or 0)
