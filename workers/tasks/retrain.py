"""The learning loop's tasks: thin adapters from Celery to app.learning.

- loupe.train_detector(run_id): executes a queued run (sent through the outbox when the
  run was started); a second delivery of the same message finds the run taken and stops.
- loupe.evaluate_classifier(run_id): the same for a classifier candidate (weights and
  prompts), evaluated on verified crops and gated.
- loupe.tune_classifier(run_id): the same for an instruction-tuning run: a LoRA adapter
  on the champion classifier, tuned, judged on the frozen test crops and gated.
- loupe.check_retrain_trigger: beat, hourly by default; records the detector's trigger
  check and the classifier's, and starts a run (retraining, or instruction tuning) when
  one fires.
- loupe.training_watchdog: beat, every minute; fails runs whose worker went silent.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.db import session_scope
from app.learning import runs, trigger, tuning_trigger
from app.learning.tables import TriggerCheck
from app.storage import ObjectStore, get_store
from app.task_names import (
    CHECK_RETRAIN_TRIGGER,
    EVALUATE_CLASSIFIER,
    TRAIN_DETECTOR,
    TRAINING_WATCHDOG,
    TUNE_CLASSIFIER,
)
from app.telemetry import metrics
from workers.celery_app import celery

log = logging.getLogger(__name__)


class CheckFunction(Protocol):
    def __call__(
        self, *, session: Session, settings: Settings, store: ObjectStore
    ) -> TriggerCheck: ...


@celery.task(name=TRAIN_DETECTOR)
def train_detector(run_id: int) -> str:
    # torch and transformers load here, not when the worker starts: beat's checks and the
    # inference tasks never need them.
    from app.learning.training import run_training

    outcome = run_training(int(run_id))
    metrics.LEARNING_RUNS.labels("train_detector", outcome).inc()
    log.info("training run %s: %s", run_id, outcome)
    return outcome


@celery.task(name=EVALUATE_CLASSIFIER)
def evaluate_classifier(run_id: int) -> str:
    from app.learning.classifier import run_classifier_evaluation

    outcome = run_classifier_evaluation(int(run_id))
    metrics.LEARNING_RUNS.labels("evaluate_classifier", outcome).inc()
    log.info("classifier run %s: %s", run_id, outcome)
    return outcome


@celery.task(name=TUNE_CLASSIFIER)
def tune_classifier(run_id: int) -> str:
    from app.learning.tuning import run_tuning

    outcome = run_tuning(int(run_id))
    metrics.LEARNING_RUNS.labels("tune_classifier", outcome).inc()
    log.info("tuning run %s: %s", run_id, outcome)
    return outcome


@celery.task(name=CHECK_RETRAIN_TRIGGER)
def check_retrain_trigger() -> dict[str, dict[str, object]]:
    """Both triggers, the detector's then the classifier's, each in a transaction of its
    own: one that fails is logged and reported, and the other's check is still recorded."""
    settings, store = get_settings(), get_store()
    checks: dict[str, CheckFunction] = {
        "detector": trigger.check,
        "classifier": tuning_trigger.check_classifier,
    }
    summaries: dict[str, dict[str, object]] = {}
    for kind, check_one in checks.items():
        try:
            with session_scope() as session:
                check = check_one(session=session, settings=settings, store=store)
                summaries[kind] = {"check": check.id, "fired": check.fired,
                                   "reasons": list(check.reasons),
                                   "run": check.training_run_id, "note": check.note}  # fmt: skip
        except Exception as exc:
            log.exception("the %s trigger check failed", kind)
            summaries[kind] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        if check.fired:
            log.info("%s trigger fired: %s (%s)", kind, "; ".join(check.reasons), check.note)
    return summaries


@celery.task(name=TRAINING_WATCHDOG)
def training_watchdog() -> list[int]:
    with session_scope() as session:
        failed = runs.fail_stale_runs(session=session, settings=get_settings())
    for run_id in failed:
        log.warning("training run %s failed: its worker stopped responding", run_id)
    return failed
