"""One delivery attempt: claim the delivery, POST the signed event, log what happened.

The `webhooks` queue's task (workers/tasks/webhooks.py) calls `attempt` and schedules
the retry it asks for. No transaction is open while the receiver is being called: the
claim commits first (the attempt is counted, and `next_attempt_at` says when it will
have timed out, so a duplicate message for the same delivery stands aside meanwhile),
then the answer is recorded in a second transaction.

Delivery is at least once: a worker that dies after the receiver answered but before
the answer was recorded sends the event again. A receiver deduplicates by the event id
(`Loupe-Event-Id`, and `id` in the body).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.policy import webhooks as policy
from app.webhooks import body as event_body
from app.webhooks.tables import OPEN, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("loupe.webhooks")

MAX_ERROR = 500  # characters of an error or of a refusing receiver's answer kept in the log
# A message that comes this early for its retry (clocks of two workers) still counts as due.
DUE_SLACK = timedelta(seconds=1)
# Beyond the timeout, before a claimed attempt counts as abandoned (a worker died mid-call).
CLAIM_MARGIN = timedelta(seconds=30)
# How long past due an open delivery waits for its message before the sweep sends another.
SWEEP_GRACE = timedelta(minutes=2)
USER_AGENT = "Loupe-Webhooks/1"

Outcome = Literal["delivered", "retrying", "failed", "skipped"]


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    url: str
    secret: str
    event_id: uuid.UUID
    event_type: str
    body: bytes
    attempt: int
    replay: int


@dataclass(frozen=True)
class Sent:
    started_at: datetime
    duration_ms: float
    status_code: int | None  # None: no answer (refused, timed out, not a URL)
    error: str | None  # None after a 2xx


@dataclass(frozen=True)
class Attempted:
    outcome: Outcome
    retry_in: float | None = None  # seconds until the next attempt, when there is one


def claim(
    *, session: Session, delivery_id: int, settings: Settings, now: datetime
) -> Claimed | None:
    """Take a delivery that is due and count the attempt; None if there is nothing to send
    (delivered, given up, its endpoint removed, not due yet, or another worker has it)."""
    row = session.execute(
        select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id, WebhookEndpoint.removed_at.is_(None))
        .with_for_update(of=WebhookDelivery.__table__, skip_locked=True)
    ).first()
    if row is None:
        session.rollback()
        return None
    delivery, url, secret = row
    due = delivery.next_attempt_at is None or delivery.next_attempt_at <= now + DUE_SLACK
    if delivery.status not in OPEN or not due:
        session.rollback()
        return None
    event = delivery.event
    body = _body(session, delivery)
    if body is None:
        session.commit()
        return None
    delivery.attempts += 1
    timeout = timedelta(seconds=settings.webhook_timeout_s)
    delivery.next_attempt_at = now + timeout + CLAIM_MARGIN
    claimed = Claimed(
        delivery.id, url, secret, event.id, event.type, body.encode(),
        delivery.attempts, delivery.replays,
    )  # fmt: skip
    session.commit()
    return claimed


def _body(session: Session, delivery: WebhookDelivery) -> str | None:
    """The event's body, built on its first delivery; None (and the delivery failed, saying
    why) if the rows it is built from are not there."""
    event = delivery.event
    if event.body is None:
        # Two endpoints' first attempts may both build it, to the same bytes.
        try:
            event.body = event_body.build(session, event)
        except event_body.NoOutcome as exc:
            delivery.status, delivery.next_attempt_at = "failed", None
            delivery.last_error = str(exc)
    return event.body


def send(client: httpx.Client, claimed: Claimed, *, timeout_s: float) -> Sent:
    """POST the event, signed now; never raises (every failure is an answer to log)."""
    started_at, started = utcnow(), time.perf_counter()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Loupe-Event": claimed.event_type,
        "Loupe-Event-Id": str(claimed.event_id),
        "Loupe-Delivery": str(claimed.delivery_id),
        policy.SIGNATURE_HEADER: policy.signature(claimed.secret, claimed.body, int(time.time())),
    }
    try:
        with client.stream(
            "POST", claimed.url, content=claimed.body, headers=headers, timeout=timeout_s
        ) as response:
            status, answer = response.status_code, _start_of(response)
    except Exception as exc:  # the receiver's failure, whatever its kind, is logged, not raised
        return Sent(started_at, _ms_since(started), None, _clean(f"{type(exc).__name__}: {exc}"))
    error = None if 200 <= status < 300 else _clean(f"HTTP {status}: {answer}")
    return Sent(started_at, _ms_since(started), status, error)


def record(
    *, session: Session, claimed: Claimed, sent: Sent, settings: Settings, draw: float
) -> Attempted:
    """Log the attempt and decide what comes next: delivered, a retry after the backoff,
    or failed for good once the attempts are spent."""
    delivery = session.get(WebhookDelivery, claimed.delivery_id, with_for_update=True)
    if delivery is None:
        session.rollback()
        return Attempted("skipped")
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id, number=claimed.attempt, replay=claimed.replay,
            started_at=sent.started_at, duration_ms=sent.duration_ms,
            status_code=sent.status_code, error=sent.error,
        )
    )  # fmt: skip
    # Replayed while the request was out (the replay's task goes on), or its endpoint was
    # removed (the delivery was closed): the attempt is logged, the state left alone.
    if delivery.replays != claimed.replay or delivery.status not in OPEN:
        session.commit()
        return Attempted("skipped")
    step = policy.next_step(
        sent.status_code, attempt=claimed.attempt, max_attempts=settings.webhook_max_attempts
    )
    delivery.last_status_code, delivery.last_error = sent.status_code, sent.error
    done = Attempted("failed")
    delivery.next_attempt_at = None
    if step == "delivered":
        delivery.status, delivery.delivered_at = "delivered", utcnow()
        done = Attempted("delivered")
    elif step == "retry":
        delay = policy.retry_delay(
            claimed.attempt,
            base_s=settings.webhook_backoff_s,
            max_s=settings.webhook_backoff_max_s,
            draw=draw,
        )
        delivery.status, delivery.next_attempt_at = "retrying", utcnow() + timedelta(seconds=delay)
        done = Attempted("retrying", delay)
    else:
        delivery.status = "failed"
    session.commit()
    return done


def overdue(*, session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Open deliveries whose message seems lost: due (or, never tried, created) more than
    SWEEP_GRACE ago. A retry is a message the broker keeps until it is due; a broker that
    was away when it was sent, or restarted without its data, loses it, and the delivery
    would wait as `retrying` for ever. Sending one again is safe: the claim takes a
    delivery only while it is open and due, once."""
    since = now - SWEEP_GRACE
    due_at = func.coalesce(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at)
    return list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status.in_(OPEN), due_at <= since)
            .order_by(due_at)
            .limit(limit)
        )
    )


def attempt(
    *,
    session: Session,
    delivery_id: int,
    client: httpx.Client,
    settings: Settings,
    draw: float | None = None,
) -> Attempted:
    """One attempt at a delivery, if it is due: claim, send, record."""
    claimed = claim(session=session, delivery_id=delivery_id, settings=settings, now=utcnow())
    if claimed is None:
        return Attempted("skipped")
    sent = send(client, claimed, timeout_s=settings.webhook_timeout_s)
    if sent.error:
        log.info("webhook delivery %s attempt %s: %s", delivery_id, claimed.attempt, sent.error)
    draw = random.random() if draw is None else draw
    return record(session=session, claimed=claimed, sent=sent, settings=settings, draw=draw)


def _start_of(response: httpx.Response) -> str:
    """The first bytes of an answer (a refusal often says why), never the whole of it."""
    taken = b""
    for chunk in response.iter_bytes():
        taken += chunk
        if len(taken) >= MAX_ERROR:
            break
    return taken[:MAX_ERROR].decode("utf-8", errors="replace")


def _clean(text: str) -> str:
    # PostgreSQL's text refuses NUL; a receiver's answer may hold anything.
    return text.replace("\x00", "")[:MAX_ERROR]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
