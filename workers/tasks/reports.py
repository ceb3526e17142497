"""Beat writes each closed week's report once, so the dashboard's history stays put."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import beat_init

from app.config import get_settings
from app.dashboard.snapshots import report_options, snapshot_closed_weeks
from app.db import session_scope, utcnow
from app.task_names import SNAPSHOT_WEEKLY_REPORTS
from workers.celery_app import celery

log = logging.getLogger(__name__)


@celery.task(name=SNAPSHOT_WEEKLY_REPORTS)
def snapshot_weekly_reports() -> list[str]:
    settings = get_settings()
    with session_scope() as session:
        written = snapshot_closed_weeks(
            session=session,
            options=report_options(settings),
            now=utcnow(),
            weeks_back=settings.dashboard_weeks,
        )
    if written:
        log.info("stored the weekly reports of %s", ", ".join(written))
    return written


@beat_init.connect
def _snapshot_on_start(sender: Any = None, **_: Any) -> None:
    """Right after a deployment the dashboard would compute twelve weeks live (seconds at
    a year of data); beat queues the snapshot once at start instead of in an hour."""
    snapshot_weekly_reports.delay()
