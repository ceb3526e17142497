"""Taking a decision back: the inspector's undo within its window, and a lead sending a
decided item back for another review. The decision rows stay (they are never changed);
the task reopens, and the inspection's verdict follows the decision now in effect.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.tables import AuditEvent
from app.db import utcnow
from app.review.decisions import Refused, TaskNotFound, verdict_update
from app.review.tables import Decision, DecisionUndo, ReviewTask
from app.telemetry import metrics
from app.webhooks import events as webhook_events

log = logging.getLogger("loupe.review")


def _lock_task(session: Session, task_id: int) -> ReviewTask:
    task = session.scalar(
        select(ReviewTask)
        .where(ReviewTask.id == task_id)
        .execution_options(populate_existing=True)
        .with_for_update()
    )
    if task is None:
        session.rollback()
        raise TaskNotFound(f"review task {task_id} does not exist")
    return task


def _set_verdict(session: Session, task: Any, verdict: str | None) -> None:
    """The inspection's verdict follows the decision in effect (Core: no ORM sync needed)."""
    session.execute(verdict_update(task, verdict))


def undo(
    *,
    session: Session,
    decision_id: int,
    user_id: int,
    window_seconds: int,
    lease_seconds: int,
    now: datetime | None = None,
) -> ReviewTask:
    """Take back one's own decision within the window: the item reopens for the same user."""
    now = now or utcnow()
    decision = session.get(Decision, decision_id)
    if decision is None or decision.user_id != user_id:
        session.rollback()
        raise Refused(f"decision {decision_id} is not yours to undo", code="not_yours")
    task = _lock_task(session, decision.review_task_id)
    if task.decision_id != decision.id or task.decided_at is None:
        session.rollback()
        raise Refused("this decision is no longer the one in effect", code="not_current")
    if now - decision.created_at > timedelta(seconds=window_seconds):
        session.rollback()
        raise Refused("the undo window has passed", code="too_late")
    session.add(DecisionUndo(decision_id=decision.id, user_id=user_id, created_at=now))
    # Back to the decision in effect before this one (a re-review's), or to none.
    previous = session.get(Decision, decision.supersedes_id) if decision.supersedes_id else None
    task.decided_at = None
    task.decision_id = previous.id if previous else None
    task.lease_owner_id = user_id
    task.lease_expires_at = now + timedelta(seconds=lease_seconds)
    _set_verdict(session, task, previous.verdict if previous else None)
    if previous is not None:  # the earlier decision is the outcome again: tell the receivers
        webhook_events.decided(session, inspection_id=task.inspection_id,
                               decision_id=previous.id, occurred_at=now)  # fmt: skip
    inspection_id = str(task.inspection_id)  # read before the commit expires it
    session.commit()
    metrics.UNDOS.inc()
    log.info("decision %s undone", decision_id, extra={"inspection_id": inspection_id})
    return task


def send_back(
    *, session: Session, task_id: int, actor_id: int, now: datetime | None = None
) -> ReviewTask:
    """A lead reopens a decided item for another review; the decision stays in effect until
    the new one supersedes it. Its old `priority_key` brings it back near the queue's front."""
    now = now or utcnow()
    task = _lock_task(session, task_id)
    if task.decided_at is None:
        session.rollback()
        raise Refused("this item is not decided; it is in the queue already", code="open")
    task.decided_at = None
    task.lease_owner_id = task.lease_expires_at = None
    session.add(
        AuditEvent(
            actor_id=actor_id,
            action="review_task.send_back",
            subject=f"review_task:{task.id}",
            details={"decision_id": task.decision_id},
            created_at=now,
        )
    )
    inspection_id = str(task.inspection_id)  # read before the commit expires it
    session.commit()
    metrics.SEND_BACKS.inc()
    log.info("review task %s sent back for re-review", task_id,
             extra={"inspection_id": inspection_id})  # fmt: skip
    return task


def undoable(
    *, session: Session, user_id: int, window_seconds: int, now: datetime | None = None
) -> Decision | None:
    """The user's latest decision if it can still be undone (for a reloaded page)."""
    now = now or utcnow()
    return session.scalar(
        select(Decision)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .where(
            Decision.user_id == user_id,
            Decision.created_at >= now - timedelta(seconds=window_seconds),
            ReviewTask.decided_at.is_not(None),
        )
        .order_by(Decision.created_at.desc())
        .limit(1)
    )
