"""Numbers about the queue and the people working it, aggregated in SQL.

An inspector sees their own: today's count, pace, agreement with audits. A lead sees the
backlog by priority band, the oldest item, SLA breaches and who holds what.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from app.auth.tables import User
from app.inspections.tables import Inspection
from app.review import priority
from app.review.tables import Decision, DecisionUndo, ReviewTask

AUDIT_DAYS = 30
# Pace is measured over the last hour, or since the first decision of the day when that
# was less than an hour ago (but at least this long, so three quick items are not 300/h).
PACE_WINDOW = timedelta(hours=1)
PACE_MIN_WINDOW = timedelta(minutes=10)
DUE_SOON = timedelta(minutes=30)

_not_undone = ~exists().where(DecisionUndo.decision_id == Decision.id)


@dataclass(frozen=True)
class InspectorNumbers:
    today: int
    pace_per_hour: int | None  # None until there is something to measure
    audit_agreement: float | None  # share of audits where they agreed with the automatic route
    audits: int


def day_start(now: datetime, timezone: str) -> datetime:
    """Midnight of `now`'s day at the site."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def inspector_numbers(
    *, session: Session, user_id: int, now: datetime, timezone: str
) -> InspectorNumbers:
    """Today's count and pace (one query on decision_user_id_created_at_idx), audits cached."""
    today = day_start(now, timezone)
    since = min(today, now - PACE_WINDOW)
    mine = and_(Decision.user_id == user_id, Decision.created_at >= since, _not_undone)
    in_today = Decision.created_at >= today
    in_hour = Decision.created_at >= now - PACE_WINDOW
    row = session.execute(
        select(
            func.count().filter(in_today),
            func.count().filter(in_hour),
            func.min(Decision.created_at).filter(in_today),
        ).where(mine)
    ).one()
    count_today, count_hour, first_today = row
    pace = None
    if count_hour:
        window = PACE_WINDOW if first_today is None else min(PACE_WINDOW, now - first_today)
        pace = round(count_hour * 3600 / max(window, PACE_MIN_WINDOW).total_seconds())
    agreed, audits = _audit_agreement(session, user_id, today.date(), today)
    share = agreed / audits if audits else None
    return InspectorNumbers(count_today, pace, share, audits)


_audit_cache: dict[tuple[int, date], tuple[int, int]] = {}


def _audit_agreement(session: Session, user_id: int, day: date, today: datetime) -> tuple[int, int]:
    """(agreed, audits) over the last 30 days up to yesterday.

    Today's audits are left out on purpose: a number that moved right after a decision
    would tell the inspector that the item was an audit. Closed days never change, so the
    answer is kept per user and day.
    """
    key = (user_id, day)
    if key not in _audit_cache:
        agreed = Decision.verdict == Decision.model_verdict
        row = session.execute(
            select(func.count().filter(agreed), func.count()).where(
                Decision.user_id == user_id,
                Decision.is_audit,
                Decision.created_at >= today - timedelta(days=AUDIT_DAYS),
                Decision.created_at < today,
                _not_undone,
            )
        ).one()
        if len(_audit_cache) > 10_000:
            _audit_cache.clear()
        _audit_cache[key] = (int(row[0]), int(row[1]))
    return _audit_cache[key]


@dataclass(frozen=True)
class QueueOverview:
    open: int
    bands: dict[str, int]  # overdue, urgent, high, normal
    held: int
    due_soon: int
    oldest_created_at: datetime | None


def queue_overview(
    *, session: Session, now: datetime, sla_seconds: int, aging_weight: float, low: float,
    high: float,
) -> QueueOverview:  # fmt: skip
    """The open backlog by priority band, in one pass over the open tasks."""
    clock = priority.aging_clock(now, sla_seconds=sla_seconds, aging_weight=aging_weight)
    urgent_below, high_below = priority.band_limits(low=low, high=high)
    effective = ReviewTask.priority_key - literal(clock)
    on_time = ReviewTask.due_at > now
    row = session.execute(
        select(
            func.count(),
            func.count().filter(~on_time),
            func.count().filter(on_time, effective < urgent_below),
            func.count().filter(on_time, effective >= urgent_below, effective < high_below),
            func.count().filter(on_time, effective >= high_below),
            func.count().filter(ReviewTask.lease_expires_at >= now),
            func.count().filter(on_time, ReviewTask.due_at <= now + DUE_SOON),
            func.min(ReviewTask.created_at),
        ).where(ReviewTask.decided_at.is_(None))
    ).one()
    bands = dict(zip(priority.BANDS, (int(n) for n in row[1:5]), strict=True))
    return QueueOverview(int(row[0]), bands, int(row[5]), int(row[6]), row[7])


@dataclass(frozen=True)
class Holding:
    task_id: int
    username: str
    external_id: str | None
    station: str
    claimed_at: datetime | None
    lease_expires_at: datetime
    attempt: int
    due_at: datetime


def holdings(*, session: Session, now: datetime) -> list[Holding]:
    """Who holds which open task right now, by person."""
    rows = session.execute(
        select(
            ReviewTask.id,
            User.username,
            Inspection.external_id,
            Inspection.station,
            ReviewTask.claimed_at,
            ReviewTask.lease_expires_at,
            ReviewTask.attempt,
            ReviewTask.due_at,
        )  # fmt: skip
        .join(User, User.id == ReviewTask.lease_owner_id)
        .join(Inspection, Inspection.id == ReviewTask.inspection_id)
        .where(ReviewTask.decided_at.is_(None), ReviewTask.lease_expires_at >= now)
        .order_by(User.username, ReviewTask.claimed_at)
    ).all()
    return [
        Holding(task_id, username, external_id, station, claimed_at, expires_at, attempt, due_at)
        for task_id, username, external_id, station, claimed_at, expires_at, attempt, due_at in rows
        if expires_at is not None  # always: the query keeps live leases only
    ]


@dataclass(frozen=True)
class InspectorDay:
    username: str
    decided: int
    last_at: datetime


def inspectors_today(*, session: Session, now: datetime, timezone: str) -> list[InspectorDay]:
    """Decisions per inspector since midnight, busiest first."""
    rows = session.execute(
        select(User.username, func.count(), func.max(Decision.created_at))
        .join(User, User.id == Decision.user_id)
        .where(Decision.created_at >= day_start(now, timezone), _not_undone)
        .group_by(User.username)
        .order_by(func.count().desc(), User.username)
    ).all()
    return [InspectorDay(*row) for row in rows]


@dataclass(frozen=True)
class RecentDecision:
    decision_id: int
    task_id: int
    created_at: datetime
    username: str
    verdict: str
    tags: list[str]
    note: str
    external_id: str | None
    # undone | in_effect (can be sent back) | reopened (sent back, in the queue) | superseded
    state: str


def recent_decisions(
    *, session: Session, limit: int = 50, search: str = ""
) -> list[RecentDecision]:
    """The latest decisions, newest first; `search` matches an external id or a username."""
    current = ReviewTask.decision_id == Decision.id
    state = case(
        (exists().where(DecisionUndo.decision_id == Decision.id), "undone"),
        (and_(current, ReviewTask.decided_at.is_not(None)), "in_effect"),
        (current, "reopened"),
        else_="superseded",
    )
    query = (
        select(
            Decision.id,
            ReviewTask.id,
            Decision.created_at,
            User.username,
            Decision.verdict,
            Decision.tags,
            Decision.note,
            Inspection.external_id,
            state,
        )  # fmt: skip
        .join(User, User.id == Decision.user_id)
        .join(ReviewTask, ReviewTask.id == Decision.review_task_id)
        .join(Inspection, Inspection.id == Decision.inspection_id)
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(limit)
    )
    if search:
        query = query.where(or_(Inspection.external_id == search, User.username == search))
    return [RecentDecision(*row) for row in session.execute(query).all()]
