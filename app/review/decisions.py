"""Human decisions: record one (taking one back and sending an item back: app.review.reopen).

A decision row is never changed. What moves is queue state on the task: whether it is
open, who holds it, and which decision is in effect (`review_task.decision_id`), which
the inspection's verdict always follows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import BigInteger, Select, Update, bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import utcnow
from app.feedback.capture import error_case_rows
from app.feedback.tables import ErrorCase
from app.inspections.tables import Inspection, Photo, Region
from app.review import edits
from app.review.proposal import (
    NO_MODEL_RESULT,
    corrected_verdict,
    counted,
    marks_a_defect,
    model_verdict,
    routed_with,
)
from app.review.rules import Rules, rules_for
from app.review.tables import VERDICTS, Decision, DecisionRegion, ReviewTask
from app.telemetry import metrics
from app.webhooks import events as webhook_events
from models import logs

log = logging.getLogger("loupe.review")

# "The model is right": its verdict and every region as it said; with corrections, the
# item as the inspector left it (app.review.proposal.corrected_verdict).
CONFIRM = "confirm"
MAX_NOTE = 2000


class LeaseLost(Exception):
    """The item was decided already, or another inspector holds it now; nothing was saved."""

    def __init__(self, message: str, *, already_decided: bool) -> None:
        super().__init__(message)
        self.already_decided = already_decided


class TaskNotFound(LookupError):
    pass


class Refused(ValueError):
    """A decision, an undo or a re-review that is not allowed now; `code` names the reason
    (a message key under review.refused)."""

    def __init__(self, message: str, *, code: str, verdict: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.verdict = verdict  # the verdict the decision would have had, where it matters


TASK, INSPECTION, REGION = ReviewTask.__table__, Inspection.__table__, Region.__table__
TASK_PREFIX = "task_"


def _lock_row(session: Session, task_id: int) -> tuple[Any, Sequence[Any]]:
    """The task's row, locked until the transaction ends, and the rows of its inspection's
    model versions, band and regions: one round trip (plain Core: decide is hot)."""
    rows = session.execute(_lock_statement(), {"lock_task": task_id}).all()
    if not rows:
        session.rollback()
        raise TaskNotFound(f"review task {task_id} does not exist")
    first = rows[0]._mapping
    task = SimpleNamespace(**{column.key: first[TASK_PREFIX + column.key] for column in TASK.c})
    return task, rows


@lru_cache(maxsize=1)
def _lock_statement() -> Select[Any]:
    """Built once: building it costs more CPU than running it. Parameter: lock_task."""
    task_columns = [column.label(TASK_PREFIX + column.key) for column in TASK.c]
    return (
        select(*task_columns, *VERSION_COLUMNS, *BAND_COLUMNS, *REGION.c)
        .select_from(
            TASK.join(INSPECTION, INSPECTION.c.id == TASK.c.inspection_id).outerjoin(
                REGION, REGION.c.inspection_id == TASK.c.inspection_id
            )
        )
        .where(TASK.c.id == bindparam("lock_task", type_=BigInteger()))
        .order_by(REGION.c.id)
        .with_for_update(of=TASK)
    )


def decide(
    *,
    session: Session,
    task_id: int,
    user_id: int,
    verdict: str,
    note: str = "",
    tags: Iterable[str] = (),
    region_edits: list[dict[str, object]] | None = None,
    expects: str | None = None,
    unmarked: bool = False,
    rules: Rules | None = None,
    now: datetime | None = None,
    commit: bool = True,
) -> Decision:
    """Record the user's decision on a task they may still decide, close the task and commit.

    Every region edit is kept, whichever verdict decides. `expects` is the verdict the
    page's confirm button showed: when the confirmed verdict would differ, nothing is saved.
    A reject that names no defect anywhere needs `unmarked` (the inspector was asked and
    insisted).
    With commit=False the caller commits, durably: the review page claims the next item in
    the same transaction, so that "decide and next" waits for the disk once.
    """
    if verdict not in (*VERDICTS, CONFIRM):
        raise ValueError(f"unknown verdict {verdict!r}; choose pass, reject or confirm")
    rules = rules or rules_for(get_settings())
    tags = _checked_tags(tags, rules)
    now = now or utcnow()
    task, rows = _lock_row(session, task_id)
    try:
        _check_decidable(task, user_id=user_id, now=now)
        decision, model_regions = _build(session, task, rows, verdict, region_edits or [], rules)
        expected = expects if verdict == CONFIRM else None
        _check_verdict(decision, expects=expected, unmarked=unmarked, rules=rules)
    except (LeaseLost, ValueError):
        # End the transaction now, so the row lock is not held while the caller moves on.
        session.rollback()
        raise
    decision.user_id, decision.created_at = user_id, now
    decision.note, decision.tags = note.strip()[:MAX_NOTE], tags
    _store(session, task, decision, model_regions)
    if commit:
        session.commit()
    _count_decision(decision)
    return decision


def _count_decision(decision: Decision) -> None:
    """Counted and logged once stored (with commit=False the caller's commit follows at
    once); a counter and a line, never a query: "decide and next" has a statement budget."""
    rereview = decision.supersedes_id is not None
    metrics.decided(decision.verdict, decision.is_audit, rereview)
    logs.bind(inspection_id=str(decision.inspection_id))
    log.info("decision %s on inspection %s: %s%s", decision.id, decision.inspection_id,
             decision.verdict, " (re-review)" if rereview else "",
             extra={"decision_id": decision.id, "verdict": decision.verdict})  # fmt: skip


DECISION_COLUMNS = tuple(c.key for c in Decision.__table__.c if c.key != "id")
ANSWER_COLUMNS = tuple(c.key for c in DecisionRegion.__table__.c if c.key != "id")


def _store(
    session: Session, task: Any, decision: Decision, model_regions: list[edits.ModelRegion]
) -> None:
    """Insert the decision, its answers and its error cases and close the task.

    Plain Core rather than the ORM's unit of work: this is the hot half of "decide and
    next", and the rows are only ever inserted.
    """
    values = {key: getattr(decision, key) for key in DECISION_COLUMNS}
    decision.id = session.execute(
        insert(Decision.__table__).values(**values).returning(Decision.__table__.c.id)
    ).scalar_one()
    for answer in decision.regions:
        answer.decision_id = decision.id
    if decision.regions:
        rows = [{key: getattr(a, key) for key in ANSWER_COLUMNS} for a in decision.regions]
        session.execute(insert(DecisionRegion.__table__), rows)
    # Feedback is captured with the decision, so no decision is ever without its cases.
    cases = error_case_rows(decision, model_regions)
    if cases:
        session.execute(insert(ErrorCase.__table__), cases)
    closed = {"decided_at": decision.created_at, "decision_id": decision.id,
              "lease_owner_id": None, "lease_expires_at": None}  # fmt: skip
    close = update(TASK).where(TASK.c.id == task.id).values(closed).returning(TASK.c.id)
    verdict = verdict_update(task, decision.verdict).returning(INSPECTION.c.id)
    # The task closes, the inspection takes the verdict and the receivers are told in one
    # statement: one round trip (app.webhooks.events).
    told = webhook_events.decided_statement(task.inspection_id, decision.id, decision.created_at)
    session.execute(told.add_cte(close.cte("closed")).add_cte(verdict.cte("verdict")))


def _check_verdict(
    decision: Decision, *, expects: str | None, unmarked: bool, rules: Rules
) -> None:
    if expects is not None and expects != decision.verdict:
        raise Refused(
            f"with these regions the item is a {decision.verdict}, not a {expects}; "
            "nothing was saved",
            code="verdict_changed",
            verdict=decision.verdict,
        )
    if (
        decision.verdict == "reject"
        and not unmarked
        and not marks_a_defect(decision.regions, rules.vocabulary.types)
    ):
        raise Refused(
            "a reject needs the defect: give a region a defect type or draw a box "
            "(or confirm that the reject has no region)",
            code="unmarked_reject",
        )


def _checked_tags(tags: Iterable[str], rules: Rules) -> list[str]:
    chosen = list(dict.fromkeys(tags))
    unknown = [t for t in chosen if t not in rules.tags]
    if unknown:
        raise ValueError(f"unknown tags: {', '.join(unknown)}")
    return chosen


def _build(
    session: Session,
    task: Any,
    rows: Sequence[Any],
    verdict: str,
    changes: list[dict[str, object]],
    rules: Rules,
) -> tuple[Decision, list[edits.ModelRegion]]:
    """The decision and its region answers, checked against the item (not yet stored), and
    the model's regions it answers (`rows`: the versions, band and regions, from the lock)."""
    regions = [row for row in rows if row.id is not None]
    # Weighed by the band the item was routed with, which may not be the one in force now.
    thresholds = routed_with(rules.thresholds, rows[0].band_high, rows[0].band_low)
    proposed = model_verdict(
        regions,
        thresholds=thresholds,
        table=rules.table,
        failed=task.reason in NO_MODEL_RESULT,
    )
    if verdict == CONFIRM and proposed is None:
        raise ValueError("there is no model result to confirm; pass or reject the item")
    model_regions = [_model_region(r) for r in regions]
    answers = edits.answers(
        changes,
        regions=model_regions,
        photos=_photo_sizes(session, task) if any("region" not in c for c in changes) else [],
        vocabulary=rules.vocabulary,
    )
    if verdict == CONFIRM:
        # Corrections are never dropped: the key confirms the item as it now stands.
        counted_ids = {r.id for r in regions if counted(r, thresholds)}
        verdict = corrected_verdict(answers, counted_ids=counted_ids, table=rules.table)
    decision = Decision(
        review_task_id=task.id,
        inspection_id=task.inspection_id,
        verdict=verdict,
        attempt=task.attempt,
        supersedes_id=task.decision_id,
        model_verdict=proposed,
        is_audit=task.is_audit,
        **{column.key: getattr(rows[0], column.key) for column in VERSION_COLUMNS},
        regions=[_row(a) for a in answers],
    )
    return decision, model_regions


VERSION_COLUMNS = (
    Inspection.detector_version, Inspection.classifier_version, Inspection.prompt_version,
)  # fmt: skip
BAND_COLUMNS = (Inspection.band_high, Inspection.band_low)


def _model_region(region: Any) -> edits.ModelRegion:
    box = (region.x1, region.y1, region.x2, region.y2)
    return edits.ModelRegion(region.id, region.photo_id, box, region.defect_type, region.severity)


def _photo_sizes(session: Session, task: Any) -> list[edits.PhotoSize]:
    rows = session.execute(
        select(Photo.id, Photo.width, Photo.height).where(Photo.inspection_id == task.inspection_id)
    ).all()
    return [edits.PhotoSize(*row) for row in rows]


def _row(answer: edits.RegionAnswer) -> DecisionRegion:
    x1, y1, x2, y2 = answer.box
    return DecisionRegion(
        region_id=answer.region_id,
        photo_id=answer.photo_id,
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        defect_type=answer.defect_type,
        severity=answer.severity,
        outcome=answer.outcome,
    )


def _check_decidable(task: Any, *, user_id: int, now: datetime) -> None:
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


def verdict_update(task: Any, verdict: str | None) -> Update:
    """The inspection's verdict set to its decision in effect (Core: no ORM sync needed)."""
    return update(INSPECTION).where(INSPECTION.c.id == task.inspection_id).values(verdict=verdict)
