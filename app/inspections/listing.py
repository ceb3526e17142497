"""Pages of inspections for systems that poll (GET /api/v1/inspections).

`decided` lists the items with a final outcome in decision order: the time the outcome
became final (InspectionOut.outcome.decided_at: `routed_at` for an automatic route, the
decision's `created_at` for an inspector's), the inspection id breaking ties. The other
statuses list items in the order they were created. A page ends with a cursor that says
where it stopped; the next page starts after it.

A re-review adds a decision with a later time, so the item shows up again, further on:
a poller keeps the last answer it read for each id. An undo (within seconds of the
decision) puts the decision before it back in effect, or none; the item is listed again
when its inspector decides it anew. The times are taken when each transaction starts its
write, so one that commits a moment after a poll can land just before that poll's cursor:
a poller that must miss nothing also re-reads from a cursor it got a few seconds earlier
(the answers are idempotent by id).

Labels that came with a site's history (`loupe import --as verified`: a decision without
a user) are no outcome the warehouse is waiting for, so `decided` leaves them out; the
other statuses and GET by id show them, decided by "import".

No N+1: one query finds the page's ids (each kind of decision from its own index, merged),
one loads the inspections with their photos and regions, one the decisions in effect
with their regions.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, literal, or_, select, tuple_, union_all
from sqlalchemy.orm import Session, selectinload

from app.inspections.tables import STATUSES, Inspection
from app.review.tables import Decision, ReviewTask

LISTED = ("decided", *STATUSES, "all")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
AUTOMATIC = ("auto_pass", "auto_reject")
Row = TypeVarTuple("Row")


class BadCursor(ValueError):
    """The cursor is not one this API gave out, or was given out for another status."""


@dataclass(frozen=True)
class Position:
    """Where a page stopped: the last item's time in the listing's order, and its id."""

    at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class Page:
    items: list[tuple[Inspection, Decision | None]]
    next: Position | None


def encode_cursor(status: str, position: Position) -> str:
    raw = json.dumps({"s": status, "t": position.at.isoformat(), "i": str(position.id)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(status: str, cursor: str) -> Position:
    """The position a cursor names; BadCursor if it is not one of ours for `status`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data: Any = json.loads(raw)
        listed, at, id_ = data["s"], datetime.fromisoformat(data["t"]), uuid.UUID(data["i"])
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise BadCursor("after: not a cursor this API gave out; start without one") from exc
    if listed != status or at.tzinfo is None:
        raise BadCursor(f"after: this cursor pages through status={listed}, not {status}")
    return Position(at, id_)


def of_station(station: str | None) -> ColumnElement[bool] | None:
    """What a station's token may read: what was recorded under it or a camera under it
    (the history pages' station filter too)."""
    if station is None:
        return None
    return or_(
        Inspection.station == station,
        Inspection.station.startswith(station + "/", autoescape=True),
    )


def _keys(
    query: Select[*Row], key: Any, after: Position | None, station: str | None, limit: int
) -> Select[*Row]:
    own = of_station(station)
    if own is not None:
        query = query.where(own)
    if after is not None:
        query = query.where(tuple_(key, Inspection.id) > tuple_(literal(after.at), after.id))
    return query.order_by(key, Inspection.id).limit(limit)


def _decided_ids(
    after: Position | None, station: str | None, limit: int
) -> Select[uuid.UUID, datetime]:
    automatic = _keys(
        select(Inspection.id.label("id"), Inspection.routed_at.label("at")).where(
            Inspection.route.in_(AUTOMATIC),
            Inspection.verdict.is_not(None),
            Inspection.routed_at.is_not(None),
        ),
        Inspection.routed_at,
        after,
        station,
        limit,
    )
    by_inspector = _keys(
        select(Inspection.id.label("id"), Decision.created_at.label("at"))
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .join(Inspection, Inspection.id == ReviewTask.inspection_id)
        .where(Decision.user_id.is_not(None)),
        Decision.created_at,
        after,
        station,
        limit,
    )
    merged = union_all(automatic, by_inspector).subquery()
    return select(merged.c.id, merged.c.at).order_by(merged.c.at, merged.c.id).limit(limit)


def _created_ids(
    status: str, after: Position | None, station: str | None, limit: int
) -> Select[uuid.UUID, datetime]:
    query = select(Inspection.id, Inspection.created_at)
    if status != "all":
        query = query.where(Inspection.status == status)
    return _keys(query, Inspection.created_at, after, station, limit)


def page(
    *, session: Session, status: str, after: Position | None, station: str | None, limit: int
) -> Page:
    """One page of `status` after `after`; `station` None reads every station's items.

    `next` is where to continue: after this page's last item, or `after` itself when the
    page is empty (a poller that is caught up asks again with the same cursor)."""
    if status == "decided":
        ids = _decided_ids(after, station, limit)
    else:
        ids = _created_ids(status, after, station, limit)
    rows = session.execute(ids).all()
    if not rows:
        return Page([], after)
    wanted = [row[0] for row in rows]
    inspections = {
        i.id: i
        for i in session.scalars(
            select(Inspection)
            .where(Inspection.id.in_(wanted))
            .options(selectinload(Inspection.photos), selectinload(Inspection.regions))
        )
    }
    decisions = {
        inspection_id: decision
        for inspection_id, decision in session.execute(
            select(ReviewTask.inspection_id, Decision)
            .join(ReviewTask, ReviewTask.decision_id == Decision.id)
            .where(ReviewTask.inspection_id.in_(wanted))
            .options(selectinload(Decision.regions))
        ).tuples()
    }
    items = [(inspections[i], decisions.get(i)) for i in wanted if i in inspections]
    last = rows[-1]
    return Page(items, Position(last[1], last[0]))
