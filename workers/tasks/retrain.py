"""The learning loop's tasks: thin adapters from Celery to app.learning.

- loupe.train_detector(run_id): executes a queued run (sent through the outbox when the
  run was started); a second delivery of the same message finds the run taken and stops.
- loupe.evaluate_classifier(run_id): the same for a classifier candidate (weights and
  prompts), evaluated on verified crops and gated.
- loupe.check_retrain_trigger: beat, hourly by default; records a trigger check and
  starts a run when it fires.
- loupe.training_watchdog: beat, every minute; fails runs whose worker went silent.
"""

from __future__ import annotations

import logging

from app.config import get_settings
from app.db import session_scope
from app.learning import runs, trigger
from app.storage import get_store
from app.task_names import (
    CHECK_RETRAIN_TRIGGER,
    EVALUATE_CLASSIFIER,
    TRAIN_DETECTOR,
    TRAINING_WATCHDOG,
)
from workers.celery_app import celery

log = logging.getLogger(__name__)


@celery.task(name=TRAIN_DETECTOR)
def train_detector(run_id: int) -> str:
    # torch and transformers load here, not when the worker starts: beat's checks and the
    # inference tasks never need them.
    from app.learning.training import run_training

    outcome = run_training(int(run_id))
    log.info("training run %s: %s", run_id, outcome)
    return outcome


@celery.task(name=EVALUATE_CLASSIFIER)
def evaluate_classifier(run_id: int) -> str:
    from app.learning.classifier import run_classifier_evaluation

    outcome = run_classifier_evaluation(int(run_id))
    log.info("classifier run %s: %s", run_id, outcome)
    return outcome


@celery.task(name=CHECK_RETRAIN_TRIGGER)
def check_retrain_trigger() -> dict[str, object]:
    settings = get_settings()
    with session_scope() as session:
        check = trigger.check(session=session, settings=settings, store=get_store())
        summary = {"check": check.id, "fired": check.fired, "reasons": check.reasons,
                   "run": check.training_run_id, "note": check.note}  # fmt: skip
    if check.fired:
        log.info("retraining trigger fired: %s (%s)", "; ".join(check.reasons), check.note)
    return summary


@celery.task(name=TRAINING_WATCHDOG)
def training_watchdog() -> list[int]:
    with session_scope() as session:
        failed = runs.fail_stale_runs(session=session, settings=get_settings())
    for run_id in failed:
        log.warning("training run %s failed: its worker stopped responding", run_id)
    return failed
