"""The review queue: create tasks, lease them to inspectors, renew and release leases.

Decisions, undo and re-review are in app.review.decisions; the queue order in
app.review.priority.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    CursorResult,
    DateTime,
    Select,
    Uuid,
    bindparam,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.auth.tables import AuditEvent
from app.config import get_settings
from app.db import utcnow
from app.inspections.tables import Inspection, Photo, Region
from app.review import priority
from app.review.priority import SEVERITY_RANK
from app.review.tables import ReviewTask
from app.thresholds.bands import settings_in_force

__all__ = ["SEVERITY_RANK", "Claim", "claim", "claim_next", "create_review_task"]

# The item on screen and the next one, whose photos the browser loads meanwhile.
HELD_WITH_PREFETCH = 2
# Undo can hand back an item while the user holds two others; never more than this.
MAX_HELD = 3


def create_review_task(
    *,
    session: Session,
    inspection_id: object,
    reason: str,
    confidence: float | None,
    severity: str | None,
    is_audit: bool,
    sla_seconds: int,
    now: datetime | None = None,
) -> ReviewTask:
    """Queue an inspection for review once; a second call returns the existing task."""
    now = now or utcnow()
    settings = settings_in_force(get_settings())
    # No model result (a failure) is the least certain of all: it goes first.
    model_confidence = confidence if confidence is not None else 0.0
    queue_confidence = (
        priority.audit_queue_confidence(
            low=settings.routing.thresholds.low, high=settings.routing.thresholds.high
        )
        if is_audit
        else model_confidence
    )
    values = {
        "inspection_id": inspection_id,
        "reason": reason,
        "is_audit": is_audit,
        "confidence": model_confidence,
        "severity_rank": SEVERITY_RANK.get(severity or "", 0),
        "priority_key": priority.priority_key(
            confidence=queue_confidence,
            created_at=now,
            sla_seconds=sla_seconds,
            aging_weight=settings.review_aging_weight,
        ),
        "created_at": now,
        "due_at": now + timedelta(seconds=sla_seconds),
    }
    session.execute(
        insert(ReviewTask).values(**values).on_conflict_do_nothing(index_elements=["inspection_id"])
    )
    task = session.scalar(select(ReviewTask).where(ReviewTask.inspection_id == inspection_id))
    assert task is not None
    return task


@dataclass(frozen=True)
class Claim:
    """What an inspector holds: the item on screen and the one prefetched after it, as
    read-only rows of review_task (attribute access like the ORM's)."""

    current: Any | None
    next: Any | None


def _open_task_query() -> Select[ReviewTask]:
    # populate_existing: a row locked FOR UPDATE must overwrite any stale copy in the session.
    return (
        select(ReviewTask)
        .where(ReviewTask.decided_at.is_(None))
        .execution_options(populate_existing=True)
    )


TASK = ReviewTask.__table__
QUEUE_COLUMNS = (ReviewTask.priority_key, ReviewTask.severity_rank, ReviewTask.created_at)
QUEUE_ORDER = (
    ReviewTask.priority_key.asc(),
    ReviewTask.severity_rank.desc(),
    ReviewTask.created_at.asc(),
)


def _lease_only_transaction() -> ColumnElement[str]:
    """A column that makes its transaction commit without waiting for its WAL to reach the
    disk (SET LOCAL synchronous_commit TO OFF, inside the statement's own round trip).

    It only moves leases. If the server crashed before the flush, the lease would be as
    it was: the item goes back to the queue, and a decision on it is refused only if
    someone else holds it by then (app.review.decisions) — never lost or doubled. The
    wait it saves (an fsync, milliseconds) is on every "decide and next". A statement that
    returns no row wrote nothing, so its commit has nothing to wait for either.
    """
    return func.set_config("synchronous_commit", "off", True).label("leases_only")


def claim(
    *,
    session: Session,
    user_id: int,
    lease_seconds: int,
    prefetch: bool = True,
    now: datetime | None = None,
    leases_only: bool = True,
    commit: bool = True,
) -> Claim:
    """Renew the user's leases and lease more, up to the item on screen and the next; commit.

    One statement, plain rows: the renewal and the claim. leases_only=False: the
    transaction also holds a decision, and commits durably. commit=False: the caller
    commits (after reading the item in the same transaction).
    """
    now = now or utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    room = HELD_WITH_PREFETCH if prefetch else 1
    values = {"claim_user": user_id, "claim_now": now, "claim_expires": expires}
    rows = session.execute(_claim_statement(room, leases_only), values).all()
    if commit:
        session.commit()
    renewed = [row for row in rows if not row.fresh]
    renewed = sorted(renewed, key=lambda t: (t.claimed_at or now, _queue_position(t)))
    fresh = sorted((row for row in rows if row.fresh), key=_queue_position)
    tasks = renewed[:MAX_HELD] + fresh
    return Claim(tasks[0] if tasks else None, tasks[1] if len(tasks) > 1 else None)


@lru_cache(maxsize=8)
def _claim_statement(room: int, leases_only: bool) -> CompoundSelect[Any]:
    """The renewal and the claim as one statement, built once per shape: every request
    makes it, and building it (CTEs over every column) costs more CPU than running it.
    Parameters: claim_user, claim_now, claim_expires."""
    user = bindparam("claim_user", type_=BigInteger())
    now = bindparam("claim_now", type_=DateTime(timezone=True))
    expires = bindparam("claim_expires", type_=DateTime(timezone=True))
    # A reload must show the item the user already holds, not take another.
    held = (
        update(TASK)
        .where(
            TASK.c.lease_owner_id == user,
            TASK.c.decided_at.is_(None),
            TASK.c.lease_expires_at >= now,
        )
        .values(lease_expires_at=expires)
        .returning(*TASK.c)
        .cte("held")
    )
    # As many more as the user lacks, up to `room`: the renewal and the claim are one
    # statement (one round trip on every "decide and next"). They touch disjoint rows: a
    # held lease has not expired, a free one has.
    # The subquery's ORDER BY matches review_task_open_idx: an index scan that stops at the
    # first rows that nobody holds and no other transaction has locked. Its LIMIT is a
    # constant, so the planner knows that only a row or two come out of it (a LIMIT that
    # depends on the renewal would be planned as 10 % of the table: a sequential scan).
    # It may lock one row more than it leases, until this transaction ends; others skip it.
    free = (
        select(TASK.c.id, *(TASK.c[c.key] for c in QUEUE_COLUMNS))
        .where(
            TASK.c.decided_at.is_(None),
            or_(TASK.c.lease_expires_at.is_(None), TASK.c.lease_expires_at < now),
        )
        .order_by(*QUEUE_ORDER)
        .limit(room)
        .with_for_update(skip_locked=True)
        .subquery("free")
    )
    wanted = select(func.greatest(0, room - func.count())).select_from(held).scalar_subquery()
    first = (
        select(free.c.id)
        .order_by(free.c.priority_key, free.c.severity_rank.desc(), free.c.created_at)
        .limit(wanted)
    )
    taken = (
        update(TASK)
        .where(TASK.c.id.in_(first))
        .values(
            lease_owner_id=user,
            lease_expires_at=expires,
            attempt=TASK.c.attempt + 1,
            claimed_at=now,
        )
        .returning(*TASK.c)
        .cte("taken")
    )
    # leases_only: every row returned says so (the column is the same in each).
    extra = [_lease_only_transaction()] if leases_only else []
    return select(held, false().label("fresh"), *extra).union_all(
        select(taken, true().label("fresh"), *extra)
    )


def _queue_position(task: Any) -> tuple[int, int, datetime]:
    return (task.priority_key, -task.severity_rank, task.created_at)


def claim_next(
    *, session: Session, user_id: int, lease_seconds: int, now: datetime | None = None
) -> Any | None:
    """Lease the most urgent open task to the user (or renew the one they hold) and commit."""
    return claim(
        session=session, user_id=user_id, lease_seconds=lease_seconds, prefetch=False, now=now
    ).current


def renew_leases(
    *, session: Session, user_id: int, lease_seconds: int, now: datetime | None = None
) -> set[int]:
    """The heartbeat: extend every lease the user still holds; returns their task ids.

    A lease that ran out but that nobody took is renewed too: the inspector is back, and
    the item is still theirs. One that someone else took is not in the answer.
    """
    now = now or utcnow()
    ids = session.scalars(
        update(ReviewTask)
        .where(ReviewTask.lease_owner_id == user_id, ReviewTask.decided_at.is_(None))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(ReviewTask.id, _lease_only_transaction())
    ).all()
    session.commit()
    return set(ids)


def release_task(
    *, session: Session, task_id: int, actor_id: int | None, now: datetime | None = None
) -> int | None:
    """A lead takes an open task away from whoever holds it; returns that user's id."""
    task = session.scalar(_open_task_query().where(ReviewTask.id == task_id).with_for_update())
    if task is None or task.lease_owner_id is None:
        session.rollback()
        return None
    holder = task.lease_owner_id
    task.lease_owner_id = None
    task.lease_expires_at = None
    session.add(
        AuditEvent(
            actor_id=actor_id,
            action="review_task.release",
            subject=f"review_task:{task_id}",
            details={"holder_id": holder},
            created_at=now or utcnow(),
        )
    )
    session.commit()
    return holder


def release_user_leases(*, session: Session, user_id: int) -> int:
    """Give back every open task the user holds (at log-out); returns how many."""
    # Session.execute is typed to return Result, but an UPDATE without RETURNING gives a
    # CursorResult, which has the rowcount (the cast SQLAlchemy 2.0.44's changelog advises).
    released = cast(
        "CursorResult[Any]",
        session.execute(
            update(ReviewTask)
            .where(ReviewTask.lease_owner_id == user_id, ReviewTask.decided_at.is_(None))
            .values(lease_owner_id=None, lease_expires_at=None)
        ),
    ).rowcount
    session.commit()
    return int(released or 0)


@dataclass(frozen=True)
class ReviewItem:
    """A task as the review page shows it. The inspection, photos and regions are plain
    rows (read-only, attribute access like the ORM's), loaded without the ORM's bookkeeping:
    this is half of every "decide and next"."""

    task: Any  # a review_task row
    inspection: Any  # external_id, station, created_at
    photos: list[Any]
    regions: list[Any]
    next_photo_ids: list[int]  # the photos of the item after it, for the browser to fetch


INSPECTION_COLUMNS = ("external_id", "station", "created_at", "band_high", "band_low")
INSPECTION_PREFIX = "inspection_"


@lru_cache(maxsize=1)
def _item_statement() -> Select[Any]:
    """The inspection with its regions (none: one row of NULLs, from the outer join); built
    once, as it runs on every "decide and next". Parameter: item."""
    inspection_table, region_table = Inspection.__table__, Region.__table__
    return (
        select(
            *(inspection_table.c[key].label(INSPECTION_PREFIX + key) for key in INSPECTION_COLUMNS),
            *region_table.c,
        )
        .select_from(
            inspection_table.outerjoin(
                region_table, region_table.c.inspection_id == inspection_table.c.id
            )
        )
        .where(inspection_table.c.id == bindparam("item", type_=Uuid()))
        .order_by(region_table.c.id)
    )


def get_for_review(
    *, session: Session, task: Any, next_task: Any | None = None
) -> ReviewItem | None:
    """A task's inspection, photos and regions (and the next item's photo ids) in two
    queries, however many photos and regions; None if the inspection is gone."""
    rows = session.execute(_item_statement(), {"item": task.inspection_id}).all()
    if not rows:
        return None
    first = rows[0]._mapping
    inspection = SimpleNamespace(
        **{key: first[INSPECTION_PREFIX + key] for key in INSPECTION_COLUMNS}
    )
    wanted = [task.inspection_id] + ([next_task.inspection_id] if next_task else [])
    photos = session.execute(
        select(Photo.__table__)
        .where(Photo.inspection_id.in_(wanted))
        .order_by(Photo.inspection_id, Photo.position)
    ).all()
    regions = [row for row in rows if row.id is not None]
    mine = [p for p in photos if p.inspection_id == task.inspection_id]
    later = [p.id for p in photos if p.inspection_id != task.inspection_id]
    return ReviewItem(task, inspection, mine, regions, later)
