"""Beat writes each closed week's report once, so the dashboard's history stays put."""

from __future__ import annotations

import logging

from app.config import get_settings
from app.dashboard.snapshots import report_options, snapshot_closed_weeks
from app.db import session_scope, utcnow
from workers.celery_app import celery

log = logging.getLogger(__name__)


@celery.task(name="loupe.snapshot_weekly_reports")
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
