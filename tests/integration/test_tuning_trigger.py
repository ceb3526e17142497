"""The classifier's trigger measured from real decisions: its numbers, its record, the
tuning run it starts, and the detector's check beside it, unaffected."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.db import utcnow
from app.inspections.tables import Region
from app.instructions.tables import InstructionSnapshot
from app.learning import runs, trigger, tuning_trigger
from app.learning.classifier import BadCandidate
from app.learning.tables import TestSetItem, TrainingRun, TriggerCheck
from app.review.tables import Decision, DecisionRegion, ReviewTask
from app.storage import make_store
from models.training.synthetic import make_dataset
from tests.integration import web_support
from tests.integration.learning_support import (
    Seeded,
    make_user,
    new_bucket,
    s3_settings,
    seed_item,
)
from tests.integration.web_support import add_user, log_in
from tests.support import reset_caches

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture


@pytest.fixture
def site(s3_endpoint, tmp_path):
    settings = s3_settings(s3_endpoint, new_bucket(s3_endpoint), tmp_path)
    return settings, make_store(settings)


def other_type(label: str) -> str:
    return "hole" if label != "hole" else "stain"


@dataclass(frozen=True)
class Reviews:
    items: list[Seeded]
    judged: int
    errors: int
    normal: int
    false_positives: int
    new_crops: int  # never tuned: every verified crop but the frozen item's


def seed_reviews(session, store) -> Reviews:  # type: ignore[no-untyped-def]
    """Nine reviewed items, each a case the measures must count (or not) as they say."""
    user = make_user(session)
    samples = [s for s in make_dataset(60, seed=7, size=64) if s.annotations][:9]
    n = [len(s.annotations) for s in samples]
    wrong = [[other_type(a.label) for a in s.annotations] for s in samples]
    options: list[dict[str, Any]] = [
        {},  # 0: all right, plus a box the human drew (a crop, not judged)
        {},  # 1: all right, then frozen into the test set (measured, never a new crop)
        {"model_types": wrong[2]},  # 2: every region named the wrong defect type
        {"model_types": ["unknown"] * n[3]},  # 3: the classifier failed: not judged
        {"false_alarm": "stain"},  # 4: a normal region called a stain: a false positive
        {"false_alarm": "stain"},  # 5: another
        {"false_alarm": "normal"},  # 6: a normal region the model called normal too
        {},  # 7: answered, but with an error in the evidence: not judged
        {"model_types": wrong[8], "decided_at": utcnow() - timedelta(days=10)},  # 8: old
    ]
    items = [seed_item(session, store, s, user, **o) for s, o in zip(samples, options, strict=True)]
    drawn = session.scalars(
        select(DecisionRegion).where(DecisionRegion.decision_id == items[0].decision_id)
    ).first()
    session.add(DecisionRegion(decision_id=items[0].decision_id, region_id=None,
                               photo_id=drawn.photo_id, x1=2, y1=2, x2=8, y2=8,
                               defect_type="tear", severity="minor", outcome="added"))  # fmt: skip
    session.add(TestSetItem(inspection_id=items[1].inspection_id))
    session.execute(
        update(Region)
        .where(Region.inspection_id == items[7].inspection_id)
        .values(defect_type="stain", evidence={"error": "classifier timed out"})
    )
    _superseded_answer(session, items[2])
    session.flush()
    judged = n[0] + n[1] + n[2] + (n[4] + 1) + (n[5] + 1) + (n[6] + 1)
    new_crops = (n[0] + 1) + sum(n[2:]) + 3
    return Reviews(items, judged, errors=n[2], normal=3, false_positives=2, new_crops=new_crops)


def _superseded_answer(session, item: Seeded) -> None:  # type: ignore[no-untyped-def]
    """A later decision on the item that is not the one in effect: it counts nowhere."""
    effect = session.get(Decision, item.decision_id)
    region = session.scalars(
        select(Region).where(Region.inspection_id == item.inspection_id)
    ).first()
    later = Decision(review_task_id=effect.review_task_id, inspection_id=item.inspection_id,
                     user_id=effect.user_id, verdict="pass", attempt=1,
                     created_at=utcnow())  # fmt: skip
    later.regions.append(DecisionRegion(region_id=region.id, photo_id=region.photo_id,
                                        x1=region.x1, y1=region.y1, x2=region.x2, y2=region.y2,
                                        defect_type="normal", outcome="not_defect"))  # fmt: skip
    session.add(later)


def fake_start(calls: list[dict[str, Any]], status: str = "queued"):  # type: ignore[no-untyped-def]
    """start_tuning_run's contract, without the instruction snapshot it would build."""

    def start(*, session, store, settings, trigger, now=None, **rest):  # type: ignore[no-untyped-def]
        calls.append({"trigger": trigger, "now": now, **rest})
        if (active := runs.active_run(session=session)) is not None:
            raise runs.RunInProgress(active)
        run = TrainingRun(kind="classifier", status=status, phase=status, trigger=trigger,
                          candidate={"uri": "/m/cls", "prompt_version": "v2",
                                     "tune": {"snapshot": "s" * 64}},
                          refusal_reasons=["only 3 examples"] if status == "refused" else [],
                          metrics={}, created_at=now or utcnow())  # fmt: skip
        session.add(run)
        session.flush()
        return run

    return start


def test_a_quiet_check_records_its_measures_and_the_detectors_is_apart(db_session, site):
    settings, store = site
    seen = seed_reviews(db_session, store)

    detector = trigger.check(session=db_session, settings=settings, store=store)
    check = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)

    assert (check.kind, detector.kind) == ("classifier", "detector")
    assert check.measures == {
        "new_verified_crops": seen.new_crops,
        "after_decision_id": None,
        "judged_regions": seen.judged,
        "classification_errors": seen.errors,
        "error_rate": pytest.approx(seen.errors / seen.judged),
        "normal_regions": 3,
        "false_positives": 2,
        "false_positives_per_1000": pytest.approx(2000 / 3),
    }
    assert (check.new_verified_samples, check.reviewed, check.disagreements) == (
        seen.new_crops, seen.judged, seen.errors,
    )  # fmt: skip
    assert check.class_precision == {} and check.window_days == settings.retrain_window_days
    # 500 new crops are needed (the default): quiet, saying so, and what it measured.
    assert not check.fired and check.training_run_id is None and check.note == ""
    assert check.reasons[0] == (
        f"only {seen.new_crops} new verified crops since the last tuning (trigger 500)"
    )
    assert [c["key"] for c in check.reason_codes] == [
        "trigger.tune_few_crops", "trigger.tune_error_rate", "trigger.tune_false_positives",
    ]  # fmt: skip
    # The detector's numbers are its own: 8 decisions in the window (the superseded one is
    # not in effect), no classifier figures.
    assert detector.reviewed == 8 and detector.measures is None
    assert trigger.recent_checks(session=db_session, kind="detector") == [detector]
    assert trigger.recent_checks(session=db_session, kind="classifier") == [check]
    assert trigger.recent_checks(session=db_session) == [check, detector]
    assert db_session.scalar(select(func.count()).select_from(TrainingRun)) == 0


def test_it_fires_starts_a_tuning_run_and_waits_for_it(db_session, site, monkeypatch):
    settings, store = site
    settings = settings.model_copy(update={"tune_trigger_min_new_crops": 5})
    seed_reviews(db_session, store)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tuning_trigger, "_start_tuning", _through(fake_start(calls)))
    # A detector run that just finished does not hold the classifier back.
    db_session.add(TrainingRun(kind="detector", status="succeeded", phase="done", trigger="beat",
                               refusal_reasons=[], metrics={}, created_at=utcnow()))  # fmt: skip
    db_session.flush()

    check = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)
    assert check.fired and check.reasons[1].key == "trigger.tune_error_rate"
    run = db_session.get(TrainingRun, check.training_run_id)
    assert (run.kind, run.status, run.trigger) == ("classifier", "queued", "beat")
    assert check.note == f"started run {run.id}"
    assert check.note_code == {"key": "trigger_note.started", "params": {"run": run.id}}

    again = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)
    assert again.fired and again.training_run_id is None
    assert again.note_code == {"key": "trigger_note.run_in_progress", "params": {"run": run.id}}

    db_session.execute(update(TrainingRun).where(TrainingRun.id == run.id)
                       .values(status="failed", finished_at=utcnow()))  # fmt: skip
    cooling = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)
    assert cooling.training_run_id is None and cooling.note_code["key"] == (
        "trigger_note.cooling_down"
    )
    assert cooling.note.startswith(f"cooling down after run {run.id} until ")
    # The detector's check cools down after the detector's run only, not the tuning run.
    detector = trigger.check(
        session=db_session,
        settings=settings.model_copy(update={"retrain_min_new_samples": 1}),
        store=store,
    )
    assert detector.note_code["key"] == "trigger_note.cooling_down"
    assert detector.note_code["params"]["run"] != run.id

    free = settings.model_copy(update={"retrain_cooldown_s": 0})
    started = tuning_trigger.check_classifier(session=db_session, settings=free, store=store)
    assert started.training_run_id not in (None, run.id)
    assert [c["trigger"] for c in calls] == ["beat"] * 3


def _through(start):  # type: ignore[no-untyped-def]
    """tuning_trigger._start_tuning, calling `start` where it calls start_tuning_run."""

    def call(*, session, store, settings, now):  # type: ignore[no-untyped-def]
        return start(session=session, store=store, settings=settings, trigger="beat", now=now)

    return call


def test_nothing_to_tune_and_a_refused_run_are_noted(db_session, site, monkeypatch):
    settings, store = site
    settings = settings.model_copy(
        update={"tune_trigger_min_new_crops": 5, "retrain_cooldown_s": 0}
    )
    seed_reviews(db_session, store)

    def no_champion(**_: object) -> TrainingRun:
        # Whatever the start wrote before it gave up does not outlive it.
        db_session.add(TrainingRun(kind="classifier", status="queued", trigger="beat",
                                   refusal_reasons=[], metrics={}))  # fmt: skip
        db_session.flush()
        raise BadCandidate("no_champion", "there is no champion classifier to tune")

    monkeypatch.setattr(tuning_trigger, "_start_tuning", no_champion)
    check = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)
    assert check.fired and check.training_run_id is None
    assert check.note == "no tuning run: there is no champion classifier to tune"
    assert check.note_code == {"key": "trigger_note.no_champion", "params": {}}
    assert db_session.scalar(select(func.count()).select_from(TrainingRun)) == 0

    def other(**_: object) -> TrainingRun:
        raise BadCandidate("prompts", "prompt version 'v9' cannot be used", version="v9")

    monkeypatch.setattr(tuning_trigger, "_start_tuning", other)
    check = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)
    assert check.note_code == {
        "key": "trigger_note.cannot_tune",
        "params": {"reason": "prompt version 'v9' cannot be used"},
    }

    monkeypatch.setattr(tuning_trigger, "_start_tuning", _through(fake_start([], "refused")))
    refused = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)
    assert refused.training_run_id is not None
    assert refused.note_code == {
        "key": "trigger_note.refused", "params": {"run": refused.training_run_id},
    }  # fmt: skip


def test_new_crops_count_from_the_last_successful_tuning(db_session, site):
    settings, store = site
    seen = seed_reviews(db_session, store)
    tuned_up_to = seen.items[4].decision_id

    def tuning_run(status: str, snapshot: str | None, max_decision_id: int) -> None:
        candidate: dict[str, Any] = {"uri": "/m/cls", "prompt_version": "v2"}
        if snapshot is not None:
            db_session.add(InstructionSnapshot(
                id=snapshot, manifest_key=f"instructions/{snapshot}.json",
                template_version="t1", prompt_version="v2", kinds=["A"], languages=["ko"],
                crops=1, examples=1, samples=1, counts={}, balance={},
                max_decision_id=max_decision_id,
            ))  # fmt: skip
            db_session.flush()
            candidate["tune"] = {"snapshot": snapshot}
        db_session.add(TrainingRun(kind="classifier", status=status, trigger="cli",
                                   candidate=candidate, refusal_reasons=[],
                                   metrics={}))  # fmt: skip
        db_session.flush()

    tuning_run("succeeded", "a" * 64, tuned_up_to)
    # Neither a later failed tuning nor an evaluation (no "tune") moves the mark.
    tuning_run("failed", "b" * 64, seen.items[7].decision_id)
    tuning_run("succeeded", None, seen.items[7].decision_id)

    newer = db_session.scalars(
        select(func.count())
        .select_from(DecisionRegion)
        .join(ReviewTask, ReviewTask.decision_id == DecisionRegion.decision_id)
        .where(DecisionRegion.decision_id > tuned_up_to)
    ).one()
    data, after = tuning_trigger.measure(session=db_session, window=timedelta(days=7), now=utcnow())
    assert after == tuned_up_to
    assert data.new_verified_crops == newer > 0
    assert tuning_trigger.count_new_crops(session=db_session, after_decision_id=None) == (
        seen.new_crops
    )


def test_beats_task_records_both_checks_and_one_failing_keeps_the_other(
    committed_db, site, monkeypatch
):
    settings, _ = site
    monkeypatch.setenv("LOUPE_S3_BUCKET", settings.s3_bucket)
    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", settings.s3_endpoint_url)
    reset_caches()
    try:
        from workers.tasks.retrain import check_retrain_trigger

        both = check_retrain_trigger.apply().get()

        def broken(**_: object) -> TriggerCheck:
            raise RuntimeError("the classifier's check broke")

        monkeypatch.setattr(tuning_trigger, "check_classifier", broken)
        one = check_retrain_trigger.apply().get()
    finally:
        monkeypatch.undo()
        reset_caches()
    rows = committed_db.scalars(select(TriggerCheck).order_by(TriggerCheck.id)).all()
    assert [row.kind for row in rows] == ["detector", "classifier", "detector"]
    assert both["detector"]["check"] == rows[0].id and both["classifier"]["check"] == rows[1].id
    assert both["classifier"]["fired"] is False and both["classifier"]["reasons"]
    assert one["detector"]["check"] == rows[2].id
    assert one["classifier"] == {"error": "RuntimeError: the classifier's check broke"}


def test_the_page_says_whose_check_it_was(make_app, db_session):
    from app.policy.problems import codes
    from app.policy.retrain import ClassifierTriggerInput, ClassifierTriggerRules, should_tune

    reasons = should_tune(ClassifierTriggerInput(600, 200, 30, 100, 2),
                          ClassifierTriggerRules()).reasons  # fmt: skip
    db_session.add(TriggerCheck(
        kind="classifier", new_verified_samples=600, reviewed=200, disagreements=30,
        window_days=7.0, fired=True, reasons=reasons, reason_codes=codes(reasons),
        note="no tuning run: none", note_code={"key": "trigger_note.no_champion", "params": {}},
    ))  # fmt: skip
    db_session.add(TriggerCheck(new_verified_samples=0, reviewed=0, disagreements=0,
                                window_days=7.0, fired=False))  # fmt: skip
    db_session.commit()
    add_user(db_session, role="ml", language="ko")
    client = make_app()
    log_in(client, "ml-ko")
    page = client.get("/ml/models").text
    assert "분류기 · " in page and "검출기 · " in page
    assert "마지막 튜닝 이후 새로 검증된 크롭 600개 (기준 500)" in page
    assert "판정 영역 200개 중 분류 오류 30개: 15.0% (기준 &gt; 10%)" in page
    assert "튜닝할 챔피언 분류기가 없습니다" in page and "new verified crops" not in page


def test_through_the_real_start_a_tuning_run_is_queued_and_then_counted_from(db_session, site):
    settings, store = site
    settings = settings.model_copy(update={
        "classifier_uri": "/models/cls-base", "tune_min_examples": 4, "tune_min_test_crops": 1,
        "tune_trigger_min_new_crops": 5, "retrain_cooldown_s": 0,
    })  # fmt: skip
    seed_reviews(db_session, store)

    check = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)
    run = db_session.get(TrainingRun, check.training_run_id)
    assert check.fired and check.note == f"started run {run.id}"
    assert (run.kind, run.status, run.trigger) == ("classifier", "queued", "beat")
    snapshot = db_session.get(InstructionSnapshot, run.candidate["tune"]["snapshot"])
    assert snapshot is not None and snapshot.max_decision_id is not None

    db_session.execute(update(TrainingRun).where(TrainingRun.id == run.id)
                       .values(status="succeeded", finished_at=utcnow()))  # fmt: skip
    after = tuning_trigger.check_classifier(session=db_session, settings=settings, store=store)
    # Everything verified was in the snapshot it tuned on: nothing is new since.
    assert after.measures["after_decision_id"] == snapshot.max_decision_id
    assert after.measures["new_verified_crops"] == 0 and not after.fired
    assert after.reasons[0] == "only 0 new verified crops since the last tuning (trigger 5)"

    # No champion classifier: the real start says so, and the check is still recorded.
    db_session.execute(update(TrainingRun).where(TrainingRun.id == run.id)
                       .values(status="failed"))  # fmt: skip
    none = settings.model_copy(update={"classifier_uri": ""})
    check = tuning_trigger.check_classifier(session=db_session, settings=none, store=store)
    assert check.fired and check.training_run_id is None
    assert check.note_code == {"key": "trigger_note.no_champion", "params": {}}
