"""Celery beat's schedule."""

from __future__ import annotations

from app.config import get_settings
from app.task_names import (
    ANALYSE_EXPERIMENT,
    CHECK_RETRAIN_TRIGGER,
    SNAPSHOT_WEEKLY_REPORTS,
    SWEEP_STUCK_INSPECTIONS,
    SWEEP_WEBHOOK_DELIVERIES,
    TRAINING_WATCHDOG,
)

_learning = get_settings()

BEAT_SCHEDULE = {
    # A closed week's report is stored once, soon after Monday 00:00 at the site; running
    # hourly (it is idempotent) also fills weeks missed while beat was down.
    "snapshot-weekly-reports": {
        "task": SNAPSHOT_WEEKLY_REPORTS,
        "schedule": 3600.0,
    },
    # Items a dead worker held, and items whose message was lost (a broker restarted
    # without persistence), would wait for the broker's visibility timeout (an hour) or
    # forever; the sweep puts them back through the outbox (app.inspections.results).
    "sweep-stuck-inspections": {
        "task": SWEEP_STUCK_INSPECTIONS,
        "schedule": _learning.sweep_interval_s,
    },
    # The learning loop: the retraining trigger (hourly by default; every check is recorded)
    # and the watchdog that fails a run whose worker went silent, freeing the training slot.
    # Webhook retries whose message the broker lost (app.webhooks.delivery.overdue).
    "sweep-webhook-deliveries": {
        "task": SWEEP_WEBHOOK_DELIVERIES,
        "schedule": 60.0,
    },
    "check-retrain-trigger": {
        "task": CHECK_RETRAIN_TRIGGER,
        "schedule": _learning.retrain_check_interval_s,
    },
    # The running experiment's A/B analysis; it promotes or rolls back when it is decided.
    "analyse-experiment": {
        "task": ANALYSE_EXPERIMENT,
        "schedule": _learning.experiment_check_interval_s,
    },
    "training-watchdog": {
        "task": TRAINING_WATCHDOG,
        "schedule": _learning.retrain_watchdog_interval_s,
    },
}
