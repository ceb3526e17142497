"""Celery beat's schedule."""

from __future__ import annotations

BEAT_SCHEDULE = {
    # Items whose message was lost (a broker restarted without persistence) would wait
    # forever; the sweep puts them back through the outbox.
    "sweep-stuck-inspections": {
        "task": "loupe.sweep_stuck_inspections",
        "schedule": 60.0,
    },
}
