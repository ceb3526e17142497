"""Training runs: start one (one at a time), move it along, and fail the ones that went silent.

Starting takes a transaction-level advisory lock, so two starts at the same moment (beat
and a person, or two people) queue behind each other: the first gets a run, the second a
clear "a run is in progress (run N)". The partial unique index on training_run holds the
rule even for writers that skip this module. Functions here do not commit unless they
say so; the lock lasts until the caller's transaction ends.

Every state change after the start is a guarded UPDATE (`WHERE status = ...`), so a
worker that lost its run to the watchdog finds out and stops, instead of overwriting it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.learning.crops import take_crops_snapshot
from app.learning.rules import dataset_rules
from app.learning.snapshot import reserve_for_training, take_snapshot
from app.learning.tables import ACTIVE_STATUSES, TRIGGERS, TrainingRun
from app.outbox import Outbox
from app.policy.problems import Problem, codes
from app.policy.retrain import dataset_problems
from app.storage import ObjectStore
from app.task_names import EVALUATE_CLASSIFIER, TRAIN_DETECTOR

# One key for "the training slot"; any bigint works as long as nothing else uses it.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"loupe:training_run").digest()[:8], "big", signed=True)
STALE_ERROR = "worker stopped responding (no heartbeat for {seconds:.0f} s); the run was abandoned"
UNCLAIMED_ERROR = (
    "no worker took the run within {seconds:.0f} s (is a Celery worker on the 'training' queue "
    "running? compose's `trainer`)"
)


class RunInProgress(RuntimeError):
    """Another run is queued or running; only one trains at a time."""

    def __init__(self, run: TrainingRun) -> None:
        super().__init__(f"a run is in progress (run {run.id}, {run.status})")
        self.run_id = run.id


def active_run(*, session: Session) -> TrainingRun | None:
    return session.scalar(select(TrainingRun).where(TrainingRun.status.in_(ACTIVE_STATUSES)))


def latest_run(
    *, session: Session, kind: str | None = None, refused: bool = True
) -> TrainingRun | None:
    """The newest run (of `kind`); with refused=False, the newest that was not refused
    at once for its data, i.e. that was queued to train."""
    query = select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)
    if kind is not None:
        query = query.where(TrainingRun.kind == kind)
    if not refused:
        query = query.where(TrainingRun.status != "refused")
    return session.scalar(query)


def get_run(*, session: Session, run_id: int) -> TrainingRun | None:
    return session.get(TrainingRun, run_id, populate_existing=True)


def recent_runs(*, session: Session, limit: int = 20) -> list[TrainingRun]:
    return list(session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)))


def start_run(
    *,
    session: Session,
    store: ObjectStore,
    settings: Settings,
    trigger: str,
    user_id: int | None = None,
    now: datetime | None = None,
) -> TrainingRun:
    """Snapshot the verified samples and queue a training run on them (not committed).

    Raises RunInProgress when a run is queued or running. A snapshot with too few samples
    gives a run that is refused at once, with its reasons; the worker checks the classes
    again against the detector it fine-tunes. The queued run reaches a worker through the
    outbox, committed with the run.
    """
    now = take_slot(session, trigger, now)
    snapshot, manifest = take_snapshot(
        session=session, store=store, val_share=settings.retrain_val_share
    )
    # Classes are checked by the worker, which knows the detector's; the count is known now.
    problems = dataset_problems(
        snapshot.class_counts["train"], snapshot.split_counts["train"], [], dataset_rules(settings)
    )
    run = new_run(session, "detector", None, snapshot.id, trigger, user_id, problems, now)
    if not problems:
        reserve_for_training(session=session, snapshot=snapshot, manifest=manifest)
        session.add(Outbox(task=TRAIN_DETECTOR, payload={"run_id": run.id}, created_at=now))
    return run


def start_classifier_run(
    *,
    session: Session,
    store: ObjectStore,
    settings: Settings,
    candidate: dict[str, str],
    trigger: str,
    user_id: int | None = None,
    exclude_crops: Collection[int] = (),
    frozen_only: bool = False,
    now: datetime | None = None,
) -> TrainingRun:
    """Snapshot the verified crops (but `exclude_crops`; of frozen test items only when
    `frozen_only`) and queue the evaluation of a classifier candidate ({"uri",
    "prompt_version"}, checked by the caller: app.learning.classifier). It takes the same
    slot as training: both want the accelerator. Refused at once without enough crops.
    Not committed."""
    now = take_slot(session, trigger, now)
    snapshot = take_crops_snapshot(
        session=session, store=store, limit=settings.classifier_eval_max_crops,
        exclude=exclude_crops, frozen_only=frozen_only,
    )  # fmt: skip
    problems = []
    minimum = settings.classifier_eval_min_crops
    if frozen_only and snapshot.samples < minimum:
        problems.append(too_few_test_crops(snapshot.samples, minimum))
    elif snapshot.samples < minimum:
        problems.append(Problem(
            f"only {snapshot.samples} verified crops to evaluate on; at least {minimum} are "
            "needed (LOUPE_CLASSIFIER_EVAL_MIN_CROPS)",
            "refusal.too_few_crops", count=snapshot.samples, minimum=minimum,
        ))  # fmt: skip
    run = new_run(session, "classifier", candidate, snapshot.id, trigger, user_id, problems, now)
    if not problems:
        session.add(Outbox(task=EVALUATE_CLASSIFIER, payload={"run_id": run.id}, created_at=now))
    return run


def too_few_test_crops(count: int, minimum: int) -> Problem:
    """A tuned classifier has seen every verified crop outside the frozen test set."""
    return Problem(
        f"only {count} crops of frozen test items to evaluate on; at least {minimum} are "
        "needed: a tuned classifier has trained on every other verified crop (freeze more "
        "with `loupe retrain freeze-test`)",
        "refusal.too_few_test_crops", count=count, minimum=minimum,
    )  # fmt: skip


def new_run(
    session: Session, kind: str, candidate: dict[str, Any] | None, snapshot_id: int,
    trigger: str, user_id: int | None, problems: Sequence[str], now: datetime,
) -> TrainingRun:  # fmt: skip
    """The run's row: queued, or refused at once with its problems as the reasons."""
    run = TrainingRun(
        kind=kind,
        candidate=candidate,
        status="refused" if problems else "queued",
        phase="refused" if problems else "queued",
        trigger=trigger,
        triggered_by_id=user_id,
        snapshot_id=snapshot_id,
        refusal_reasons=problems,
        refusal_codes=codes(problems),
        metrics={},
        created_at=now,
        heartbeat_at=now,
        finished_at=now if problems else None,
    )
    session.add(run)
    session.flush()
    return run


def take_slot(session: Session, trigger: str, now: datetime | None) -> datetime:
    """Wait for the training slot's lock; RunInProgress if a run holds the slot."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, not {trigger!r}")
    session.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
    if (running := active_run(session=session)) is not None:
        raise RunInProgress(running)
    return now or utcnow()


def claim_run(*, session: Session, run_id: int, now: datetime | None = None) -> bool:
    """queued -> running for the worker that got the message; False if it is not queued.

    A message delivered twice (the broker redelivers after a worker died, or after the
    visibility timeout) finds the run running or finished and leaves it alone.
    """
    now = now or utcnow()
    values = {"status": "running", "phase": "loading", "started_at": now, "heartbeat_at": now}
    return _guarded(session, run_id, ("queued",), values)


def report_progress(
    *,
    session: Session,
    run_id: int,
    step: int,
    total_steps: int,
    loss: float | None,
    eta_s: float,
    epoch: float | None,
    phase: str = "training",
    now: datetime | None = None,
) -> bool:
    """Record live progress; False when the run is no longer running (stop training).
    A classifier run reports crops evaluated, with no loss or epoch."""
    values = {"step": step, "total_steps": total_steps, "loss": loss, "eta_s": eta_s,
              "epoch": epoch, "phase": phase, "heartbeat_at": now or utcnow()}  # fmt: skip
    return _guarded(session, run_id, ("running",), values)


def set_phase(*, session: Session, run_id: int, phase: str, now: datetime | None = None) -> bool:
    return _guarded(
        session, run_id, ("running",), {"phase": phase, "heartbeat_at": now or utcnow()}
    )


def heartbeat(*, session: Session, run_id: int, now: datetime | None = None) -> bool:
    return _guarded(session, run_id, ("running",), {"heartbeat_at": now or utcnow()})


def refuse_run(
    *, session: Session, run_id: int, reasons: Sequence[str], now: datetime | None = None
) -> bool:
    values = {"status": "refused", "phase": "refused", "refusal_reasons": reasons,
              "refusal_codes": codes(reasons), "finished_at": now or utcnow()}  # fmt: skip
    return _guarded(session, run_id, ACTIVE_STATUSES, values)


def fail_run(*, session: Session, run_id: int, error: str, now: datetime | None = None) -> bool:
    """Mark an active run failed with its error; False if it had finished already."""
    values = {"status": "failed", "phase": "failed", "error": error[:4000],
              "finished_at": now or utcnow()}  # fmt: skip
    return _guarded(session, run_id, ACTIVE_STATUSES, values)


def lock_running(*, session: Session, run_id: int) -> TrainingRun | None:
    """The run, row-locked, if it is still running: the last step of a run holds this while
    it registers its model, so the watchdog cannot fail it halfway."""
    return session.scalar(
        select(TrainingRun)
        .where(TrainingRun.id == run_id, TrainingRun.status == "running")
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def fail_stale_runs(
    *, session: Session, settings: Settings, now: datetime | None = None
) -> list[int]:
    """The watchdog: fail running runs without a recent heartbeat, and queued runs nobody took.

    Failing a run frees the training slot, so the next start can proceed.
    """
    now = now or utcnow()
    silent, unclaimed = settings.retrain_heartbeat_timeout_s, settings.retrain_queued_timeout_s
    failed: list[int] = []
    for status, column, seconds, message in (
        ("running", TrainingRun.heartbeat_at, silent, STALE_ERROR),
        ("queued", TrainingRun.created_at, unclaimed, UNCLAIMED_ERROR),
    ):
        failed += session.scalars(
            update(TrainingRun)
            .where(TrainingRun.status == status, column < now - timedelta(seconds=seconds))
            .values(
                status="failed",
                phase="failed",
                finished_at=now,
                error=message.format(seconds=seconds),
            )
            .returning(TrainingRun.id)
        ).all()
    return failed


def _guarded(
    session: Session, run_id: int, statuses: tuple[str, ...], values: dict[str, Any]
) -> bool:
    result = session.execute(
        update(TrainingRun)
        .where(TrainingRun.id == run_id, TrainingRun.status.in_(statuses))
        .values(**values)
        .returning(TrainingRun.id)
    )
    return result.first() is not None
