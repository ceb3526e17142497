"""Celery beat's schedule."""

from __future__ import annotations

BEAT_SCHEDULE = {
    # A closed week's report is stored once, soon after Monday 00:00 at the site; running
    # hourly (it is idempotent) also fills weeks missed while beat was down.
    "snapshot-weekly-reports": {
        "task": "loupe.snapshot_weekly_reports",
        "schedule": 3600.0,
    },
    # Items whose message was lost (a broker restarted without persistence) would wait
    # forever; the sweep puts them back through the outbox.
    "sweep-stuck-inspections": {
        "task": "loupe.sweep_stuck_inspections",
        "schedule": 60.0,
    },
}
