"""deliver_webhook: a thin adapter from the `webhooks` queue to app.webhooks.delivery.

The queue has a worker of its own (`loupe run`'s `webhooks` child, compose's `webhooks`
service): a receiver that takes its full timeout to answer holds a webhook worker's
thread, never one that inspections are waiting for.

A retry is this task again, sent with a countdown. Celery keeps such a message in the
broker until it is due; a worker that dies meanwhile hands it back (acks late), and the
claim in app.webhooks.delivery makes a message that arrives twice send once. A message
that never reached the broker, or that a broker restarted without its data lost, is sent
again by beat's sweep once its delivery is overdue.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import httpx

from app.config import get_settings
from app.db import session_scope, utcnow
from app.task_names import DELIVER_WEBHOOK, SWEEP_WEBHOOK_DELIVERIES
from app.telemetry import metrics
from app.webhooks import delivery
from workers.celery_app import celery

log = logging.getLogger(__name__)


@lru_cache
def get_client() -> httpx.Client:
    """One connection pool for every delivery of this process. Redirects are not followed:
    a receiver that moved answers 3xx, which is logged as a failure an admin can see."""
    return httpx.Client(follow_redirects=False)


@celery.task(name=DELIVER_WEBHOOK)
def deliver_webhook(delivery_id: int) -> str:
    with session_scope() as session:
        done = delivery.attempt(
            session=session, delivery_id=delivery_id, client=get_client(), settings=get_settings()
        )
    if done.retry_in is not None:
        try:
            schedule_retry(delivery_id, done.retry_in)
        except Exception:  # the broker is away: the delivery waits, as `retrying`, for a replay
            log.exception("could not schedule the retry of webhook delivery %s", delivery_id)
    metrics.WEBHOOK_DELIVERIES.labels(done.outcome).inc()
    return done.outcome


def schedule_retry(delivery_id: int, countdown: float) -> None:
    deliver_webhook.apply_async(kwargs={"delivery_id": delivery_id}, countdown=countdown)


@celery.task(name=SWEEP_WEBHOOK_DELIVERIES)
def sweep_webhook_deliveries() -> int:
    """Send again each open delivery whose message seems lost; how many were sent."""
    with session_scope() as session:
        overdue = delivery.overdue(session=session, now=utcnow())
    for delivery_id in overdue:
        schedule_retry(delivery_id, 0)
    if overdue:
        log.warning("sent %s overdue webhook deliveries again", len(overdue))
    return len(overdue)
