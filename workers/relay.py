"""The outbox relay: delivers committed outbox rows to Celery.

An upload commits its rows and an outbox row in one transaction and never talks to
Redis, so a Redis outage loses nothing: rows wait here until the broker is back.
Delivery is at least once; the tasks are idempotent.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import session_scope, utcnow
from app.outbox import REQUEST_ID_HEADER, REQUEST_ID_KEY, Outbox
from app.telemetry.exposition import serve_port
from models import logs

log = logging.getLogger("loupe.relay")

Publish = Callable[[str, dict[str, Any], str], None]


def relay_pending(*, session: Session, publish: Publish, limit: int = 100) -> int:
    """Publish pending rows in order; stop at the first failure. Returns how many were sent."""
    rows = session.scalars(
        select(Outbox)
        .where(Outbox.sent_at.is_(None))
        .order_by(Outbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    sent = 0
    for row in rows:
        try:
            publish(row.task, row.payload, f"outbox-{row.id}")
        except Exception as exc:  # the broker is down: keep the row, try again later
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("outbox %s not delivered: %s", row.id, row.last_error)
            break
        row.sent_at = utcnow()
        sent += 1
    session.commit()
    return sent


def celery_publish(task: str, payload: dict[str, Any], message_id: str) -> None:
    from workers.celery_app import celery

    kwargs = dict(payload)
    request_id = kwargs.pop(REQUEST_ID_KEY, None)
    headers = {REQUEST_ID_HEADER: str(request_id)} if request_id else None
    # retry=False: fail fast while Redis is down instead of blocking the relay.
    celery.send_task(task, kwargs=kwargs, task_id=message_id, retry=False, headers=headers)
    with logs.trail(request_id=request_id, inspection_id=kwargs.get("inspection_id")):
        log.debug("%s sent as %s", task, message_id)


def run_forever(stop: threading.Event, publish: Publish = celery_publish) -> None:
    poll = get_settings().outbox_poll_s
    while not stop.is_set():
        try:
            with session_scope() as session:
                sent = relay_pending(session=session, publish=publish)
        except Exception:  # the database is down: log and keep going
            log.exception("outbox relay pass failed")
            sent = 0
        if not sent:
            stop.wait(poll)


def main() -> None:
    settings = get_settings()
    logs.configure(text_format="%(asctime)s %(name)s %(message)s", fmt=settings.log_format)
    serve_port(settings.metrics_port, "relay")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("outbox relay started")
    run_forever(stop)


if __name__ == "__main__":
    main()
