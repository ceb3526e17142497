"""The inspection history: find any inspection, and read one's whole record.

This is the audit trail a site shows its customer: what came in, what the models said and
why the item went where it went, and every human decision on it in order, including the
ones taken back (undo) and replaced (a lead's re-review), with who and when. Nothing here
changes a row; the pages are app.inspections.history_views.

Search pages newest first by arrival (`created_at`, then id) with a cursor, as the API's
listing does (app.inspections.listing, whose cursor and station filter this reuses).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, literal, select, tuple_
from sqlalchemy.orm import Session, aliased

from app.auth.tables import AuditEvent, User
from app.feedback.tables import ErrorCase
from app.inspections import listing, service
from app.inspections.tables import Inspection
from app.review.tables import Decision, DecisionRegion, DecisionUndo, ReviewTask

ROUTE_FILTERS = ("auto_pass", "auto_reject", "review", "audit", "pending")
VERDICT_FILTERS = ("pass", "reject", "undecided")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_EXTERNAL_ID = 200  # the column's width
MAX_STATION = 100
CURSOR = "history"  # the listing a cursor pages through (listing.decode_cursor checks it)
SEND_BACK = "review_task.send_back"  # the audit event of a lead's re-review
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


OfDecision = TypeVar("OfDecision", DecisionRegion, ErrorCase)


class BadFilter(ValueError):
    """A filter the page cannot use; `code` names the message (history.bad.<code>)."""

    def __init__(self, field: str, code: str, **params: object) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Filters:
    external_id: str = ""
    station: str = ""
    route: str = ""
    verdict: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def query(self) -> dict[str, str]:
        """The filters as the page's query string has them (only the ones set)."""
        values = {
            "external_id": self.external_id,
            "station": self.station,
            "route": self.route,
            "verdict": self.verdict,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {name: value for name, value in values.items() if value}


def parse_filters(
    *, external_id: str | None, station: str | None, route: str | None, verdict: str | None,
    date_from: str | None, date_to: str | None,
) -> Filters:  # fmt: skip
    """The filters as typed into the page, checked; BadFilter says what is wrong."""
    external_id, station = (external_id or "").strip(), (station or "").strip()
    if len(external_id) > MAX_EXTERNAL_ID:
        raise BadFilter("external_id", "too_long", max=MAX_EXTERNAL_ID)
    if len(station) > MAX_STATION:
        raise BadFilter("station", "too_long", max=MAX_STATION)
    route, verdict = (route or "").strip(), (verdict or "").strip()
    if route and route not in ROUTE_FILTERS:
        raise BadFilter("route", "unknown", value=route, allowed=", ".join(ROUTE_FILTERS))
    if verdict and verdict not in VERDICT_FILTERS:
        raise BadFilter("verdict", "unknown", value=verdict, allowed=", ".join(VERDICT_FILTERS))
    first, last = _day("from", date_from), _day("to", date_to)
    if first and last and first > last:
        raise BadFilter("to", "before_from", first=first.isoformat(), last=last.isoformat())
    return Filters(external_id, station, route, verdict, first, last)


def _day(name: str, value: str | None) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        # date.fromisoformat also reads "20260105" and "2026-W02-1"; the page says YYYY-MM-DD.
        if not ISO_DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(name, "date", value=value[:40]) from None


def parse_limit(value: str | None) -> int:
    value = (value or "").strip()
    if not value:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadFilter("limit", "limit", value=value[:20], max=MAX_LIMIT)
    return int(value)


def parse_cursor(value: str | None) -> listing.Position | None:
    if not value:
        return None
    try:
        return listing.decode_cursor(CURSOR, value)
    except listing.BadCursor:
        raise BadFilter("after", "cursor") from None


# --- search ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One inspection in the results, with how its review went."""

    inspection: Inspection
    decisions: int  # every decision on it, undone and replaced ones included
    decided_by: str | None  # the inspector whose decision is in effect
    open_review: bool  # in the queue now (never decided, undone, or sent back)


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next: str | None  # the cursor of the page after this one; None on the last page


def _conditions(filters: Filters, timezone: str) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if filters.external_id:
        found.append(Inspection.external_id.istartswith(filters.external_id, autoescape=True))
    if (station := listing.of_station(filters.station or None)) is not None:
        found.append(station)
    if filters.route == "audit":
        found.append(Inspection.is_audit.is_(True))
    elif filters.route == "pending":
        found.append(Inspection.route.is_(None))
    elif filters.route:
        found.append(Inspection.route == filters.route)
    if filters.verdict == "undecided":
        found.append(Inspection.verdict.is_(None))
    elif filters.verdict:
        found.append(Inspection.verdict == filters.verdict)
    if filters.date_from:
        found.append(Inspection.created_at >= site_midnight(filters.date_from, timezone))
    if filters.date_to:
        next_day = filters.date_to + timedelta(days=1)
        found.append(Inspection.created_at < site_midnight(next_day, timezone))
    return found


def site_midnight(day: date, timezone: str) -> datetime:
    """Where `day` starts at the site: the dates people type are the site's own days."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))


def search(
    *, session: Session, filters: Filters, after: listing.Position | None, limit: int,
    timezone: str,
) -> Page:  # fmt: skip
    """A page of the inspections that match, newest first, after the cursor `after`."""
    query = select(Inspection).where(*_conditions(filters, timezone))
    if after is not None:
        key = tuple_(Inspection.created_at, Inspection.id)
        query = query.where(key < tuple_(literal(after.at), after.id))
    order = (Inspection.created_at.desc(), Inspection.id.desc())
    found = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    shown = found[:limit]
    reviews = _reviews(session, [i.id for i in shown])
    rows = [Row(i, *reviews.get(i.id, (0, None, False))) for i in shown]
    more = len(found) > limit
    last = shown[-1] if shown else None
    cursor = listing.Position(last.created_at, last.id) if more and last else None
    return Page(rows, listing.encode_cursor(CURSOR, cursor) if cursor else None)


def _reviews(
    session: Session, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, str | None, bool]]:
    """Per inspection: how many decisions, whose is in effect, whether the task is open."""
    if not ids:
        return {}
    in_effect = aliased(Decision)
    count = (
        select(func.count(Decision.id))
        .where(Decision.review_task_id == ReviewTask.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(ReviewTask.inspection_id, count, User.username, ReviewTask.decided_at)
        .outerjoin(in_effect, in_effect.id == ReviewTask.decision_id)
        .outerjoin(User, User.id == in_effect.user_id)
        .where(ReviewTask.inspection_id.in_(ids))
    ).all()
    return {row[0]: (row[1], row[2], row[3] is None) for row in rows}


# --- one inspection's record -----------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRecord:
    """One human decision as it stands now, numbered in the order they were made."""

    number: int
    decision: Decision
    by: str | None  # None: a label an import brought, not a person's decision
    state: str  # in_effect | undone | superseded | reopened (sent back, in the queue)
    undo: DecisionUndo | None
    undone_by: str | None
    supersedes: int | None  # the number of the decision it replaced after a re-review
    answers: list[DecisionRegion]
    error_cases: list[ErrorCase]


@dataclass(frozen=True)
class Event:
    """One line of the timeline: what happened to the item, when, and who did it."""

    at: datetime
    kind: str  # received | routed | queued | decided | undone | sent_back
    who: str | None = None
    decision: int | None = None  # the decision's number


@dataclass(frozen=True)
class Record:
    inspection: Inspection
    task: ReviewTask | None
    decisions: list[DecisionRecord]
    events: list[Event] = field(default_factory=list)


def record(*, session: Session, inspection_id: uuid.UUID) -> Record | None:
    """Everything the history page shows of one inspection; None if there is no such one."""
    inspection = service.get(session=session, inspection_id=inspection_id)
    if inspection is None:
        return None
    task = session.scalar(select(ReviewTask).where(ReviewTask.inspection_id == inspection_id))
    decisions = _decisions(session, inspection_id, task)
    return Record(inspection, task, decisions, _events(session, inspection, task, decisions))


def _decisions(
    session: Session, inspection_id: uuid.UUID, task: ReviewTask | None
) -> list[DecisionRecord]:
    rows = session.execute(
        select(Decision, User.username)
        .outerjoin(User, User.id == Decision.user_id)
        .where(Decision.inspection_id == inspection_id)
        .order_by(Decision.created_at, Decision.id)
    ).all()
    ids = [d.id for d, _ in rows]
    undos = {
        undo.decision_id: (undo, name)
        for undo, name in session.execute(
            select(DecisionUndo, User.username)
            .join(User, User.id == DecisionUndo.user_id)
            .where(DecisionUndo.decision_id.in_(ids))
        ).tuples()
    }
    answers = _by_decision(session.scalars(
        select(DecisionRegion).where(DecisionRegion.decision_id.in_(ids))
        .order_by(DecisionRegion.id)
    ))  # fmt: skip
    cases = _by_decision(session.scalars(
        select(ErrorCase).where(ErrorCase.decision_id.in_(ids)).order_by(ErrorCase.id)
    ))  # fmt: skip
    numbers = {d.id: n for n, (d, _) in enumerate(rows, start=1)}
    records = []
    for decision, name in rows:
        undo, undone_by = undos.get(decision.id, (None, None))
        records.append(DecisionRecord(
            number=numbers[decision.id], decision=decision, by=name,
            state=_state(decision, task, undone=undo is not None), undo=undo,
            undone_by=undone_by, supersedes=numbers.get(decision.supersedes_id or 0),
            answers=answers.get(decision.id, []), error_cases=cases.get(decision.id, []),
        ))  # fmt: skip
    return records


def _by_decision(rows: Iterable[OfDecision]) -> dict[int, list[OfDecision]]:
    grouped: dict[int, list[OfDecision]] = {}
    for row in rows:
        grouped.setdefault(row.decision_id, []).append(row)
    return grouped


def _state(decision: Decision, task: ReviewTask | None, *, undone: bool) -> str:
    """As the lead's queue page says it (app.review.stats.recent_decisions)."""
    if undone:
        return "undone"
    if task is not None and task.decision_id == decision.id:
        return "in_effect" if task.decided_at is not None else "reopened"
    return "superseded"


def _events(
    session: Session, inspection: Inspection, task: ReviewTask | None,
    decisions: list[DecisionRecord],
) -> list[Event]:  # fmt: skip
    """The item's timeline, oldest first."""
    events = [Event(inspection.created_at, "received")]
    if inspection.routed_at is not None:
        events.append(Event(inspection.routed_at, "routed"))
    if task is not None:
        events.append(Event(task.created_at, "queued"))
        sent_back = session.execute(
            select(AuditEvent.created_at, User.username)
            .outerjoin(User, User.id == AuditEvent.actor_id)
            .where(AuditEvent.action == SEND_BACK, AuditEvent.subject == f"review_task:{task.id}")
        ).all()
        events += [Event(at, "sent_back", who) for at, who in sent_back]
    for d in decisions:
        events.append(Event(d.decision.created_at, "decided", d.by, d.number))
        if d.undo is not None:
            events.append(Event(d.undo.created_at, "undone", d.undone_by, d.number))
    order = {"received": 0, "routed": 1, "queued": 2}
    return sorted(events, key=lambda e: (e.at, order.get(e.kind, 3)))
