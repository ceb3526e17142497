"""Endpoints an admin manages, their delivery logs, and replays.

The page (app.webhooks.views) and the command line (app.webhooks.cli) both call these;
every change goes to the audit log with the change itself. The caller commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from app.auth.service import record
from app.db import utcnow
from app.outbox import Outbox
from app.policy import webhooks as policy
from app.task_names import DELIVER_WEBHOOK
from app.webhooks.tables import OPEN, STATUSES, WebhookDelivery, WebhookEndpoint

SECRET_PREFIX = "whsec_"
REMOVED = "the endpoint was removed"
DEFAULT_LOG = 50
MAX_LOG = 500


@dataclass(frozen=True)
class EndpointSummary:
    endpoint: WebhookEndpoint
    counts: dict[str, int]  # deliveries by status, every status present
    last_delivered_at: datetime | None


def add_endpoint(
    *,
    session: Session,
    url: str,
    events: list[str],
    secret: str | None = None,
    actor_id: int | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret, which is shown this once.

    Without `secret` one is generated; an admin whose receiver has its secret already
    (kept in a vault) brings it. BadEndpoint says what is wrong with the input.
    """
    url = policy.check_url(url)
    chosen = policy.check_events(events)
    secret = (
        policy.check_secret(secret)
        if secret is not None
        else SECRET_PREFIX + secrets.token_urlsafe(32)
    )
    endpoint = WebhookEndpoint(url=url, events=chosen, secret=secret, created_by_id=actor_id)
    session.add(endpoint)
    session.flush()
    record(session=session, actor_id=actor_id, action="webhook.add",
           subject=f"webhook_endpoint:{endpoint.id}", url=url, events=chosen)  # fmt: skip
    return endpoint, secret


def list_endpoints(*, session: Session) -> list[EndpointSummary]:
    """Every endpoint not removed, oldest first, with its deliveries counted by status."""
    endpoints = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.removed_at.is_(None))
        .order_by(WebhookEndpoint.id)
    ).all()
    rows = session.execute(
        select(
            WebhookDelivery.endpoint_id,
            WebhookDelivery.status,
            func.count(),
            func.max(WebhookDelivery.delivered_at),
        )
        .where(WebhookDelivery.endpoint_id.in_([e.id for e in endpoints]))
        .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.status)
    ).all()
    counts: dict[int, dict[str, int]] = {e.id: dict.fromkeys(STATUSES, 0) for e in endpoints}
    last: dict[int, datetime] = {}
    for endpoint_id, status, n, delivered_at in rows:
        counts[endpoint_id][status] = n
        if delivered_at is not None:
            last[endpoint_id] = max(delivered_at, last.get(endpoint_id, delivered_at))
    return [EndpointSummary(e, counts[e.id], last.get(e.id)) for e in endpoints]


def get_endpoint(*, session: Session, endpoint_id: int) -> WebhookEndpoint | None:
    """An endpoint that has not been removed."""
    return session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.removed_at.is_(None)
        )
    )


def remove_endpoint(
    *, session: Session, endpoint_id: int, actor_id: int | None = None
) -> WebhookEndpoint | None:
    """Stop sending to an endpoint: it gets no new events, and what it was still owed is
    closed as failed. The row and its log stay (tables.WebhookEndpoint says why)."""
    endpoint = get_endpoint(session=session, endpoint_id=endpoint_id)
    if endpoint is None:
        return None
    endpoint.removed_at = utcnow()
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status.in_(OPEN))
        .values(status="failed", next_attempt_at=None, last_error=REMOVED)
    )
    record(session=session, actor_id=actor_id, action="webhook.remove",
           subject=f"webhook_endpoint:{endpoint_id}", url=endpoint.url)  # fmt: skip
    session.flush()
    return endpoint


def delivery_log(
    *, session: Session, endpoint_id: int | None = None, limit: int = DEFAULT_LOG
) -> list[WebhookDelivery]:
    """The newest deliveries (of one endpoint, or of all), each with its event and attempts."""
    query = (
        select(WebhookDelivery)
        .options(selectinload(WebhookDelivery.attempt_log))
        .order_by(WebhookDelivery.id.desc())
        .limit(max(1, min(limit, MAX_LOG)))
    )
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return list(session.scalars(query).unique())


def replay(
    *, session: Session, delivery_id: int, actor_id: int | None = None
) -> WebhookDelivery | None:
    """Send a delivery again, whatever became of it: a new round of attempts with the same
    event (same id, same body, a fresh signature). None if there is no such delivery, or
    its endpoint was removed."""
    delivery = session.scalar(
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id, WebhookEndpoint.removed_at.is_(None))
        .with_for_update(of=WebhookDelivery.__table__)
    )
    if delivery is None:
        return None
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, None
    delivery.replays += 1
    session.add(Outbox(task=DELIVER_WEBHOOK, payload={"delivery_id": delivery.id}))
    record(session=session, actor_id=actor_id, action="webhook.replay",
           subject=f"webhook_delivery:{delivery.id}", event_id=str(delivery.event_id),
           replay=delivery.replays)  # fmt: skip
    session.flush()
    return delivery
