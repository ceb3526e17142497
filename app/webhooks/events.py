"""The hook the deciding code calls: an inspection's outcome became final, or changed.

Called inside the transaction that changes the outcome, so the event commits or rolls
back with it (the outbox pattern, app.outbox): an automatic route
(app.inspections.results), an inspector's decision, a re-review's, and an undo that puts
an earlier decision back in effect (app.review.decisions). An undo that leaves the item
undecided sends nothing; the next decision does, as the cursor-paged feed lists it
(app.inspections.listing).

What is written is an event row, one delivery per endpoint listening, and one outbox row
per delivery for the relay to hand to the `webhooks` queue. Nobody waits for a receiver:
the deciding request only adds rows, and a slow or failing receiver is the worker's
business. It is one statement, one round trip, and it writes nothing at all where no
endpoint listens, which is the price every decision pays for webhooks.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CTE,
    BigInteger,
    DateTime,
    Integer,
    String,
    Uuid,
    and_,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.orm import Session

from app.db import utcnow
from app.outbox import Outbox
from app.policy.webhooks import EVENTS
from app.task_names import DELIVER_WEBHOOK
from app.webhooks.tables import WebhookDelivery, WebhookEndpoint, WebhookEvent

DECIDED = "decided"
_endpoint, _event, _delivery = (
    WebhookEndpoint.__table__, WebhookEvent.__table__, WebhookDelivery.__table__
)  # fmt: skip
LISTENING = and_(_endpoint.c.events.any(DECIDED), _endpoint.c.removed_at.is_(None))


def decided(
    session: Session,
    *,
    inspection_id: uuid.UUID,
    decision_id: int | None,
    occurred_at: datetime,
) -> None:
    """The outcome of `inspection_id` is now `decision_id`'s (None: the automatic route's)."""
    session.execute(decided_statement(inspection_id, decision_id, occurred_at))


def decided_statement(
    inspection_id: uuid.UUID, decision_id: int | None, occurred_at: datetime
) -> Insert:
    """The one statement `decided` runs, for a caller that adds its own writes to it as
    CTEs (a decision closes its task in the same round trip, app.review.decisions)."""
    now = utcnow()
    event = _new_event(inspection_id, decision_id, occurred_at)
    deliveries = _new_deliveries(event, now)
    return insert(Outbox.__table__).from_select(
        ["task", "payload", "created_at", "attempts"],
        select(
            literal(DELIVER_WEBHOOK, String()),
            func.jsonb_build_object("delivery_id", deliveries.c.id),
            literal(now, DateTime(timezone=True)),
            literal(0, Integer()),
        ).select_from(deliveries),
    )


def _new_event(inspection_id: uuid.UUID, decision_id: int | None, occurred_at: datetime) -> CTE:
    """INSERT the event if an endpoint listens, RETURNING its id (a CTE of the statement)."""
    values = select(
        literal(uuid.uuid4(), Uuid()),
        literal(EVENTS[DECIDED], String()),
        literal(inspection_id, Uuid()),
        literal(decision_id, BigInteger()),
        literal(occurred_at, DateTime(timezone=True)),
    ).where(exists().where(LISTENING))
    columns = ["id", "type", "inspection_id", "decision_id", "occurred_at"]
    return insert(_event).from_select(columns, values).returning(_event.c.id).cte("new_event")


def _new_deliveries(event: CTE, now: datetime) -> CTE:
    """INSERT one pending delivery per listening endpoint, RETURNING their ids."""
    values = (
        select(
            event.c.id,
            _endpoint.c.id,
            literal("pending", String()),
            literal(0, Integer()),
            literal(0, Integer()),
            literal(now, DateTime(timezone=True)),
        )
        .select_from(event)
        .join(_endpoint, LISTENING)
    )
    columns = ["event_id", "endpoint_id", "status", "attempts", "replays", "created_at"]
    insert_rows = insert(_delivery).from_select(columns, values)
    return insert_rows.returning(_delivery.c.id).cte("new_delivery")
