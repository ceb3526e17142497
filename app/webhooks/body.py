"""The JSON an endpoint receives: the event, and the inspection's outcome as the station
API gives it (GET /api/v1/inspections/{id}'s `outcome`, app.inspections.schemas), so a
receiver that polls the feed and one that takes webhooks parse the same document.

Example (`inspection.outcome` has every field of OutcomeOut):

    {"id": "5c0f…", "type": "inspection.decided", "occurred_at": "2026-12-09T10:31:07.2Z",
     "inspection": {"id": "9e1b…", "station": "dock-3/cam-1", "external_id": "RMA-1042",
                    "outcome": {"decided_by": "inspector", "verdict": "reject", …}}}

The outcome is the one of the decision the event names (or of the automatic route), not
whatever is in effect when the body is built: decisions, their answers and an automatic
route never change once written, so the body is the same whenever it is built.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.inspections import service as inspections
from app.inspections.schemas import InspectionOut, OutcomeOut
from app.review.tables import Decision
from app.webhooks.tables import WebhookEvent


class DecidedInspection(BaseModel):
    id: uuid.UUID
    station: str
    external_id: str | None
    outcome: OutcomeOut


class Event(BaseModel):
    id: uuid.UUID  # the same in every retry and replay: a receiver deduplicates by it
    type: str  # inspection.decided
    occurred_at: datetime  # when the outcome changed; the latest wins for one inspection
    inspection: DecidedInspection


class NoOutcome(LookupError):
    """The event names an inspection or decision that is not there (it cannot happen while
    rows are never deleted; said plainly in the delivery log if it ever does)."""


def build(session: Session, event: WebhookEvent) -> str:
    """The event's body as sent: compact JSON in the models' field order."""
    inspection = inspections.get(session=session, inspection_id=event.inspection_id)
    decision = None
    if event.decision_id is not None:
        decision = session.scalar(
            select(Decision)
            .where(Decision.id == event.decision_id)
            .options(selectinload(Decision.regions))
        )
    if inspection is None or (event.decision_id is not None and decision is None):
        raise NoOutcome(f"inspection {event.inspection_id} or its decision is gone")
    outcome = InspectionOut.of(inspection, decision).outcome
    if outcome is None:
        raise NoOutcome(f"inspection {event.inspection_id} has no final outcome")
    return Event(
        id=event.id,
        type=event.type,
        occurred_at=event.occurred_at,
        inspection=DecidedInspection(
            id=inspection.id,
            station=inspection.station,
            external_id=inspection.external_id,
            outcome=outcome,
        ),
    ).model_dump_json()
