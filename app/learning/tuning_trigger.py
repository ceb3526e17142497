"""The classifier's trigger: measure from the database, decide (app.policy.retrain.should_tune),
record, and start an instruction-tuning run (app.learning.tuning) when it fires.

Beat runs it beside the detector's check (app.learning.trigger); each records its own
`trigger_check` row, told apart by `kind`, with its own reasons and note.

The numbers, over verified region answers (a decision in effect's answer for a model
region, joined to that region) decided within the window:
- judged regions: the classifier gave a real answer: a type, not "unknown", and no error
  in its evidence (as app.instructions.answers.model_answer reads a region). Drawn boxes
  have no model region and are not judged;
- classification errors: among the judged, the classifier named a defect type and the
  human kept a defect of another type. This is app.policy.disagreement's
  "classification_error" on the type field; severity disagreements are not counted, and
  a defect called normal (or normal called a defect) is a false negative (positive), not
  a classification error;
- normal regions: among the judged, the human said "not a defect" (NOT_A_DEFECT); false
  positives: among those, the classifier named a defect (disagreement's region
  "false_positive"). The rate is per 1,000 normal regions, as the tuning gate measures it.
New verified crops: every verified region answer (app.learning.crops.verified_crops,
drawn boxes included: the instruction builder learns from them too) of a decision newer
than the newest decision of the instruction snapshot the last succeeded tuning run was
tuned on (all of them before the first), leaving out frozen test items, which are never
trained on (app.instructions.source).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.inspections.tables import Region
from app.instructions.tables import InstructionSnapshot
from app.learning.classifier import BadCandidate
from app.learning.crops import verified_crops
from app.learning.rules import trigger_window, tune_trigger_rules
from app.learning.tables import TestSetItem, TrainingRun, TriggerCheck
from app.learning.trigger import UNJUDGED, cooling_down, start_note
from app.policy.metrics import NOT_A_DEFECT
from app.policy.problems import Problem, codes
from app.policy.retrain import ClassifierTriggerInput, should_tune
from app.review.tables import Decision, DecisionRegion, ReviewTask
from app.storage import ObjectStore

KIND = "classifier"


def measure(
    *, session: Session, window: timedelta, now: datetime
) -> tuple[ClassifierTriggerInput, int | None]:
    """The classifier trigger's inputs, aggregated in SQL, and the decision new crops are
    counted after (None: never tuned)."""
    after = last_tuned_decision(session=session)
    judged, errors, normal, false_positives = _window_counts(session, now - window)
    data = ClassifierTriggerInput(
        new_verified_crops=count_new_crops(session=session, after_decision_id=after),
        judged_regions=judged,
        classification_errors=errors,
        normal_regions=normal,
        false_positives=false_positives,
    )
    return data, after


def check_classifier(
    *, session: Session, settings: Settings, store: ObjectStore, now: datetime | None = None
) -> TriggerCheck:
    """Measure, decide, record a classifier check, and start a tuning run if it fired
    (not committed)."""
    now = now or utcnow()
    data, after = measure(session=session, window=trigger_window(settings), now=now)
    decision = should_tune(data, tune_trigger_rules(settings))
    row = TriggerCheck(
        checked_at=now,
        kind=KIND,
        measures=measures(data, after),
        # The detector's columns, read for the classifier: verified crops new since the last
        # tuning; the judged regions the rate is measured over; and, as "disagreements",
        # the classification errors among them (so disagreements / reviewed is the error
        # rate). The false positives live in `measures`; per-class precision is the
        # detector's measure and stays empty.
        new_verified_samples=data.new_verified_crops,
        reviewed=data.judged_regions,
        disagreements=data.classification_errors,
        window_days=settings.retrain_window_days,
        class_precision={},
        class_support={},
        fired=decision.fire,
        reasons=decision.reasons,
        reason_codes=codes(decision.reasons),
        note="",
    )
    if decision.fire:
        note, row.training_run_id = _start_if_free(session, settings, store, now)
        row.note, row.note_code = note, note.code()
    session.add(row)
    session.flush()
    return row


def measures(data: ClassifierTriggerInput, after_decision_id: int | None) -> dict[str, Any]:
    """What a classifier check saw, as stored in `trigger_check.measures`."""
    return {
        "new_verified_crops": data.new_verified_crops,
        "after_decision_id": after_decision_id,
        "judged_regions": data.judged_regions,
        "classification_errors": data.classification_errors,
        "error_rate": data.error_rate,
        "normal_regions": data.normal_regions,
        "false_positives": data.false_positives,
        "false_positives_per_1000": data.false_positives_per_1000,
    }


def _is_tuning() -> ColumnElement[bool]:
    """A tuning run: a classifier run whose candidate says what it tunes on (an evaluation's
    candidate has no "tune"); app.learning.tuning.is_tuning in SQL."""
    return (TrainingRun.kind == KIND) & func.jsonb_extract_path(
        TrainingRun.candidate, "tune"
    ).is_not(None)


def last_tuning_run(*, session: Session) -> TrainingRun | None:
    """The newest tuning run, whatever its status: the classifier's cooldown runs from it."""
    return session.scalar(
        select(TrainingRun).where(_is_tuning()).order_by(TrainingRun.id.desc()).limit(1)
    )


def last_tuned_decision(*, session: Session) -> int | None:
    """The newest decision in the instruction snapshot of the last tuning run that succeeded."""
    tuned_on = func.jsonb_extract_path_text(TrainingRun.candidate, "tune", "snapshot")
    return session.scalar(
        select(InstructionSnapshot.max_decision_id)
        .join(TrainingRun, tuned_on == InstructionSnapshot.id)
        .where(_is_tuning(), TrainingRun.status == "succeeded")
        .order_by(TrainingRun.id.desc())
        .limit(1)
    )


def count_new_crops(*, session: Session, after_decision_id: int | None) -> int:
    """Verified crops of decisions newer than the given one, frozen test items left out."""
    crops = verified_crops().where(Decision.inspection_id.not_in(select(TestSetItem.inspection_id)))
    if after_decision_id is not None:
        crops = crops.where(Decision.id > after_decision_id)
    inner = crops.subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def _window_counts(session: Session, since: datetime) -> tuple[int, int, int, int]:
    """(judged regions, classification errors, normal regions, false positives)."""
    model_type, human_type = Region.defect_type, DecisionRegion.defect_type
    model_flagged, human_flagged = model_type != NOT_A_DEFECT, human_type != NOT_A_DEFECT
    error = func.coalesce(func.jsonb_extract_path_text(Region.evidence, "error"), "")
    row = session.execute(
        select(
            func.count(),
            func.count().filter(model_flagged, human_flagged, human_type != model_type),
            func.count().filter(~human_flagged),
            func.count().filter(~human_flagged, model_flagged),
        )
        .select_from(DecisionRegion)
        .join(Region, Region.id == DecisionRegion.region_id)
        .join(Decision, Decision.id == DecisionRegion.decision_id)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .where(Decision.created_at >= since, model_type != UNJUDGED, error == "")
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _start_if_free(
    session: Session, settings: Settings, store: ObjectStore, now: datetime
) -> tuple[Problem, int | None]:
    """What the check did about a trigger that fired, and the tuning run it started."""
    # The detector's runs do not hold the classifier's cooldown back (nor the other way):
    # each model waits after its own last run. One run at a time still holds for both.
    if (cooling := cooling_down(last_tuning_run(session=session), settings, now)) is not None:
        return cooling, None
    try:
        # A start that finds nothing to tune leaves nothing behind (the check is recorded).
        with session.begin_nested():
            return start_note(
                lambda: _start_tuning(session=session, store=store, settings=settings, now=now)
            )
    except BadCandidate as exc:
        return _cannot_tune(exc), None


def _start_tuning(
    *, session: Session, store: ObjectStore, settings: Settings, now: datetime
) -> TrainingRun:
    # Imported here: the tuning module belongs to the training side of the loop, which
    # beat's hourly check needs only on the hour it fires.
    from app.learning.tuning import start_tuning_run

    return start_tuning_run(
        session=session, store=store, settings=settings, trigger="beat", now=now
    )


def _cannot_tune(exc: BadCandidate) -> Problem:
    # app.learning.tuning says "no_champion_to_tune"; an evaluation's word is "no_champion".
    if exc.reason in ("no_champion", "no_champion_to_tune"):
        return Problem(f"no tuning run: {exc}", "trigger_note.no_champion")
    return Problem(f"no tuning run: {exc}", "trigger_note.cannot_tune", reason=str(exc))
