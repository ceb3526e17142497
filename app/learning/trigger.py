"""The detector's retraining trigger: measure from the database, decide
(app.policy.retrain), record. The classifier's is app.learning.tuning_trigger; both record
`trigger_check` rows, told apart by `kind`.

Beat calls `check` hourly by default. Every check is recorded with the numbers it saw,
whether it fired and why, and the run it started; a check that fired but started nothing
says why (a run in progress, or the cooldown after the last run).

The numbers:
- new verified samples: photos of verified items decided after the newest decision in the
  snapshot of the last run that succeeded (all of them before the first success);
- disagreement: among decisions in effect made within the window that have a model
  verdict, the share where the human's verdict differs;
- per-class precision and support: over the model regions judged within the window, for
  each type the model named, the share the human kept as that type (support: how many
  regions the model named so), as app.policy.metrics.per_class_counts defines them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.inspections.tables import Region
from app.learning import runs
from app.learning.rules import trigger_rules, trigger_window
from app.learning.tables import DatasetSnapshot, TrainingRun, TriggerCheck
from app.learning.verified import count_new_samples
from app.policy.metrics import NOT_A_DEFECT
from app.policy.problems import Problem, codes
from app.policy.retrain import TriggerInput, should_retrain
from app.review.tables import Decision, DecisionRegion, ReviewTask
from app.storage import ObjectStore

# The type a region gets when classification failed (models.contracts): a missing
# answer, not a claim about a class, so it has no precision to speak of.
UNJUDGED = "unknown"


def measure(
    *, session: Session, window: timedelta, now: datetime, trained_until: int | None
) -> TriggerInput:
    """The trigger's inputs, aggregated in SQL; new samples are those decided after
    `trained_until` (the last trained snapshot's newest decision; None: never trained)."""
    since = now - window
    reviewed, disagreements = _disagreement(session, since)
    precision, support = _class_precision(session, since)
    return TriggerInput(
        new_verified_samples=count_new_samples(session=session, after_decision_id=trained_until),
        reviewed=reviewed,
        disagreements=disagreements,
        class_precision=precision,
        class_support=support,
    )


def check(
    *, session: Session, settings: Settings, store: ObjectStore, now: datetime | None = None
) -> TriggerCheck:
    """Measure, decide, record, and start a run if the trigger fired (not committed)."""
    now = now or utcnow()
    window = trigger_window(settings)
    trained_until = _last_trained_decision(session)
    data = measure(session=session, window=window, now=now, trained_until=trained_until)
    decision = should_retrain(data, trigger_rules(settings))
    row = TriggerCheck(
        checked_at=now,
        kind="detector",
        new_verified_samples=data.new_verified_samples,
        reviewed=data.reviewed,
        disagreements=data.disagreements,
        window_days=settings.retrain_window_days,
        class_precision=data.class_precision,
        class_support=data.class_support,
        fired=decision.retrain,
        reasons=decision.reasons,
        reason_codes=codes(decision.reasons),
        note="",
    )
    if decision.retrain:
        # Until a run has trained, every verified sample is new.
        samples = data.new_verified_samples if trained_until is None else None
        note, row.training_run_id = _start_if_free(session, settings, store, now, samples)
        row.note, row.note_code = note, note.code()
    session.add(row)
    session.flush()
    return row


def recent_checks(
    *, session: Session, limit: int = 20, kind: str | None = None
) -> list[TriggerCheck]:
    """The newest checks first: both kinds, or the detector's or the classifier's only."""
    query = select(TriggerCheck).order_by(TriggerCheck.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(TriggerCheck.kind == kind)
    return list(session.scalars(query))


def _start_if_free(
    session: Session, settings: Settings, store: ObjectStore, now: datetime,
    never_trained_samples: int | None,
) -> tuple[Problem, int | None]:  # fmt: skip
    """What the check did about a trigger that fired, and the run it started.
    `never_trained_samples`: the verified samples of a site where no run has trained yet
    (None once one has)."""
    # A classifier run (an evaluation, or a tuning: app.learning.tuning_trigger) does not
    # delay the detector's retraining.
    # A run refused for too few samples trained nothing: the cooldown (disagreement stays
    # high until a retrained model serves) counts from the last run that trained.
    last = runs.latest_run(session=session, kind="detector", refused=False)
    if (cooling := cooling_down(last, settings, now)) is not None:
        return cooling, None
    # Below what a run needs, it would be refused at once, its snapshot written for
    # nothing, at every check.
    have, need = never_trained_samples, settings.retrain_min_samples
    if have is not None and have < need:
        return Problem(f"waiting for samples: {have} verified, a run needs {need}",
                       "trigger_note.too_few_samples", have=have, need=need), None  # fmt: skip
    return start_note(
        lambda: runs.start_run(
            session=session, store=store, settings=settings, trigger="beat", now=now
        )
    )


def cooling_down(last: TrainingRun | None, settings: Settings, now: datetime) -> Problem | None:
    """The note of a check that waits out the cooldown after `last`, or None when free.

    An active run is no cooldown: starting says "in progress" instead."""
    cooldown = timedelta(seconds=settings.retrain_cooldown_s)
    if last is None or last.is_active or last.created_at <= now - cooldown:
        return None
    until = f"{last.created_at + cooldown:%Y-%m-%d %H:%M}"
    return Problem(f"cooling down after run {last.id} until {until} UTC",
                   "trigger_note.cooling_down", run=last.id, until=until)  # fmt: skip


def start_note(start: Callable[[], TrainingRun]) -> tuple[Problem, int | None]:
    """Start a run; the note that says what came of it, and the run's id if there is one."""
    try:
        run = start()
    except runs.RunInProgress as exc:
        return Problem(str(exc), "trigger_note.run_in_progress", run=exc.run_id), None
    if run.status == "refused":
        # The runs table says why, in the reader's language.
        return Problem(f"run {run.id} refused: {'; '.join(run.refusal_reasons)}",
                       "trigger_note.refused", run=run.id), run.id  # fmt: skip
    return Problem(f"started run {run.id}", "trigger_note.started", run=run.id), run.id


def _last_trained_decision(session: Session) -> int | None:
    """The newest decision in the snapshot of the last run that succeeded, if any."""
    return session.scalar(
        select(DatasetSnapshot.max_decision_id)
        .join(TrainingRun, TrainingRun.snapshot_id == DatasetSnapshot.id)
        .where(TrainingRun.status == "succeeded", TrainingRun.kind == "detector")
        .order_by(TrainingRun.id.desc())
        .limit(1)
    )


def _disagreement(session: Session, since: datetime) -> tuple[int, int]:
    row = session.execute(
        select(
            func.count(),
            func.count().filter(Decision.verdict != Decision.model_verdict),
        )
        .select_from(Decision)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .where(Decision.created_at >= since, Decision.model_verdict.is_not(None))
    ).one()
    return int(row[0]), int(row[1])


def _class_precision(session: Session, since: datetime) -> tuple[dict[str, float], dict[str, int]]:
    """Precision per type the model named: kept as that type / all the model named so."""
    model_type = Region.defect_type
    rows = session.execute(
        select(
            model_type,
            func.count(),
            func.count().filter(DecisionRegion.defect_type == model_type),
        )
        .select_from(DecisionRegion)
        .join(Region, Region.id == DecisionRegion.region_id)
        .join(Decision, Decision.id == DecisionRegion.decision_id)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .where(Decision.created_at >= since, model_type.not_in((NOT_A_DEFECT, UNJUDGED)))
        .group_by(model_type)
        .order_by(model_type)
    ).all()
    precision = {name: kept / named for name, named, kept in rows}
    support = {name: int(named) for name, named, _ in rows}
    return precision, support
