"""The review queue: create tasks, claim the next one with a lease, record decisions."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, joinedload

from app.db import utcnow
from app.inspections.tables import Inspection
from app.review.tables import Decision, ReviewTask

SEVERITY_RANK = {"minor": 1, "moderate": 2, "severe": 3}


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
    values = {
        "inspection_id": inspection_id,
        "reason": reason,
        "is_audit": is_audit,
        # No model result (a failure) is the least certain of all: it goes first.
        "confidence": confidence if confidence is not None else 0.0,
        "severity_rank": SEVERITY_RANK.get(severity or "", 0),
        "created_at": now,
        "due_at": now + timedelta(seconds=sla_seconds),
    }
    session.execute(
        insert(ReviewTask).values(**values).on_conflict_do_nothing(index_elements=["inspection_id"])
    )
    task = session.scalar(select(ReviewTask).where(ReviewTask.inspection_id == inspection_id))
    assert task is not None
    return task


VERDICTS = ("pass", "reject")


class LeaseLost(Exception):
    """The item was decided already, or another inspector holds it now; nothing was saved."""

    def __init__(self, message: str, *, already_decided: bool) -> None:
        super().__init__(message)
        self.already_decided = already_decided


class TaskNotFound(LookupError):
    pass


def _open_task_query() -> Select[ReviewTask]:
    # populate_existing: a row locked FOR UPDATE must overwrite any stale copy in the session.
    return (
        select(ReviewTask)
        .where(ReviewTask.decided_at.is_(None))
        .execution_options(populate_existing=True)
    )


def claim_next(
    *, session: Session, user_id: int, lease_seconds: int, now: datetime | None = None
) -> ReviewTask | None:
    """Lease the most urgent open task to the user (or renew the one they hold) and commit."""
    now = now or utcnow()
    # A reload of the page must show the item the user already holds, not take another.
    task = session.scalar(
        _open_task_query()
        .where(ReviewTask.lease_owner_id == user_id, ReviewTask.lease_expires_at >= now)
        .order_by(ReviewTask.lease_expires_at)
        .limit(1)
        .with_for_update()
    )
    if task is None:
        # The ORDER BY matches review_task_open_idx, so this is an index scan that stops at
        # the first row that no other transaction has locked.
        task = session.scalar(
            _open_task_query()
            .where(or_(ReviewTask.lease_expires_at.is_(None), ReviewTask.lease_expires_at < now))
            .order_by(
                ReviewTask.confidence.asc(),
                ReviewTask.severity_rank.desc(),
                ReviewTask.created_at.asc(),
            )
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if task is None:
            session.commit()
            return None
        task.attempt += 1
    task.lease_owner_id = user_id
    task.lease_expires_at = now + timedelta(seconds=lease_seconds)
    session.commit()
    return task


def decide(
    *,
    session: Session,
    task_id: int,
    user_id: int,
    verdict: str,
    note: str = "",
    now: datetime | None = None,
) -> Decision:
    """Record the user's verdict on a task they may still decide, close the task and commit."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; choose one of {', '.join(VERDICTS)}")
    now = now or utcnow()
    task = session.scalar(
        select(ReviewTask)
        .where(ReviewTask.id == task_id)
        .execution_options(populate_existing=True)
        .with_for_update()
    )
    if task is None:
        session.rollback()
        raise TaskNotFound(f"review task {task_id} does not exist")
    try:
        _check_decidable(task, user_id=user_id, now=now)
    except LeaseLost:
        # End the transaction now, so the row lock is not held while the caller moves on.
        session.rollback()
        raise
    decision = Decision(
        review_task_id=task.id,
        inspection_id=task.inspection_id,
        user_id=user_id,
        verdict=verdict,
        note=note.strip(),
        attempt=task.attempt,
        created_at=now,
    )
    session.add(decision)
    task.decided_at = now
    task.lease_owner_id = None
    task.lease_expires_at = None
    session.execute(
        update(Inspection).where(Inspection.id == task.inspection_id).values(verdict=verdict)
    )
    session.commit()
    return decision


def _check_decidable(task: ReviewTask, *, user_id: int, now: datetime) -> None:
    if task.decided_at is not None:
        raise LeaseLost(
            f"review task {task.id} was already decided; this decision was not saved",
            already_decided=True,
        )
    held_by_other = task.lease_owner_id not in (None, user_id)
    # An expired lease that nobody else has taken since is still honoured.
    if held_by_other and task.lease_expires_at is not None and task.lease_expires_at >= now:
        raise LeaseLost(
            f"the lease on review task {task.id} expired and another user holds it now; "
            "this decision was not saved",
            already_decided=False,
        )


def get_for_review(*, session: Session, task_id: int) -> ReviewTask | None:
    """A task with its inspection, photos and regions loaded in three queries (no N+1)."""
    inspection = joinedload(ReviewTask.inspection)
    return session.scalar(
        select(ReviewTask)
        .where(ReviewTask.id == task_id)
        .options(
            inspection.selectinload(Inspection.photos),
            inspection.selectinload(Inspection.regions),
        )
    )
