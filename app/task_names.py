"""The names of the Celery tasks, in one place.

A name is the wire format between whoever sends a task (an outbox row, beat) and the
worker that runs it, so each is spelled once, here. This module imports nothing, Celery
least of all: the web app and the outbox write these names without loading Celery.
"""

from __future__ import annotations

# Sent through the outbox (app.outbox), delivered by the relay (workers/relay.py).
RUN_INFERENCE = "loupe.run_inference"
TRAIN_DETECTOR = "loupe.train_detector"
EVALUATE_CLASSIFIER = "loupe.evaluate_classifier"
TUNE_CLASSIFIER = "loupe.tune_classifier"
# An export for /ml/exports (app.exports.jobs); on the `training` queue with the long runs.
EXPORT_DATASET = "loupe.export_dataset"
# Webhook deliveries, on the `webhooks` queue (app.webhooks); retries come from the task itself.
DELIVER_WEBHOOK = "loupe.deliver_webhook"

# Sent by beat (workers/schedule.py).
SWEEP_STUCK_INSPECTIONS = "loupe.sweep_stuck_inspections"
SNAPSHOT_WEEKLY_REPORTS = "loupe.snapshot_weekly_reports"
CHECK_RETRAIN_TRIGGER = "loupe.check_retrain_trigger"
TRAINING_WATCHDOG = "loupe.training_watchdog"
ANALYSE_EXPERIMENT = "loupe.analyse_experiment"
SWEEP_WEBHOOK_DELIVERIES = "loupe.sweep_webhook_deliveries"
