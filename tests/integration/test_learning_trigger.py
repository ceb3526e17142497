"""The retraining trigger measured from real decisions: its numbers, its record, its run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.db import utcnow
from app.learning import runs, trigger
from app.learning.tables import TrainingRun, TriggerCheck
from app.policy.metrics import per_class_counts
from app.storage import make_store
from models.training.synthetic import make_dataset
from tests.integration.learning_support import make_user, new_bucket, s3_settings, seed_item
from tests.support import reset_caches

pytestmark = pytest.mark.integration


@pytest.fixture
def site(s3_endpoint, tmp_path):
    settings = s3_settings(
        s3_endpoint, new_bucket(s3_endpoint), tmp_path, retrain_min_class_support=2
    )
    return settings, make_store(settings)


def seed_reviews(session, store):  # type: ignore[no-untyped-def]
    """Ten reviewed items: 3 of them disagree on the verdict, one is outside the window,
    and the model called a pilling and a tear stains and raised three stain false alarms."""
    user = make_user(session)
    samples = [s for s in make_dataset(30, seed=5, size=64) if s.annotations][:10]
    pairs = []  # (model type, human type) of every judged model region in the window
    for index, sample in enumerate(samples):
        options = {}
        if index < 3:
            options["model_verdict"] = "pass"  # the human rejected it
        if index == 3:
            options["model_types"] = ["stain"] * len(sample.annotations)
        if index in (4, 5, 6):
            options["false_alarm"] = "stain"
        seed_item(session, store, sample, user, **options)
        types = options.get("model_types") or [a.label for a in sample.annotations]
        pairs += list(zip(types, [a.label for a in sample.annotations], strict=True))
        if index in (4, 5, 6):
            pairs.append(("stain", "normal"))
    old = make_dataset(40, seed=6, size=64)[0]
    seed_item(session, store, old, user, model_verdict="pass",
              decided_at=utcnow() - timedelta(days=10))  # fmt: skip
    session.commit()
    return pairs, len(samples) + 1


def test_a_check_records_its_numbers_and_starts_a_run(committed_db, site):
    settings, store = site
    pairs, items = seed_reviews(committed_db, store)

    check = trigger.check(session=committed_db, settings=settings, store=store)
    committed_db.commit()

    assert (check.new_verified_samples, check.reviewed, check.disagreements) == (items, 10, 3)
    expected = per_class_counts(pairs)
    assert check.class_precision == pytest.approx(
        {
            name: counts.precision
            for name, counts in expected.items()
            if counts.precision is not None
        }
    )
    assert check.class_support == {
        name: c.true_positive + c.false_positive
        for name, c in expected.items()
        if c.true_positive + c.false_positive
    }
    assert check.fired and check.reasons[0].startswith("disagreement 30.0% of 10 reviews")
    # stain: 6 kept of the 11 the model named so (2 misnamed, 3 false alarms).
    assert "stain precision 0.55 over 11 regions (trigger < 0.70)" in check.reasons
    run = committed_db.get(TrainingRun, check.training_run_id)
    assert (run.status, run.trigger) == ("queued", "beat")
    assert check.note == f"started run {run.id}"
    # Codes beside the English, for the page to say them in the reader's language.
    assert check.note_code == {"key": "trigger_note.started", "params": {"run": run.id}}
    assert [c["key"] for c in check.reason_codes][:1] == ["trigger.disagreement"]

    again = trigger.check(session=committed_db, settings=settings, store=store)
    committed_db.commit()
    assert again.fired and again.training_run_id is None
    assert again.note == f"a run is in progress (run {run.id}, queued)"
    assert again.note_code == {"key": "trigger_note.run_in_progress", "params": {"run": run.id}}
    assert committed_db.scalar(select(func.count()).select_from(TrainingRun)) == 1


def test_a_quiet_check_is_recorded_too(committed_db, site):
    settings, store = site
    check = trigger.check(session=committed_db, settings=settings, store=store)
    committed_db.commit()
    assert not check.fired and check.reasons == [] and check.training_run_id is None
    assert (check.new_verified_samples, check.reviewed, check.disagreements) == (0, 0, 0)
    assert committed_db.scalar(select(func.count()).select_from(TriggerCheck)) == 1


def test_new_samples_count_from_the_last_successful_snapshot_and_beat_cools_down(
    committed_db, site
):
    settings, store = site
    settings = settings.model_copy(update={"retrain_min_new_samples": 2})
    seed_reviews(committed_db, store)
    run = runs.start_run(session=committed_db, store=store, settings=settings, trigger="cli")
    committed_db.execute(
        update(TrainingRun).where(TrainingRun.id == run.id).values(status="succeeded")
    )
    committed_db.commit()
    user = make_user(committed_db)
    for sample in make_dataset(2, seed=11, size=64):
        seed_item(committed_db, store, sample, user)
    committed_db.commit()

    check = trigger.check(session=committed_db, settings=settings, store=store)
    committed_db.commit()
    assert check.new_verified_samples == 2
    assert "2 new verified samples (trigger 2)" in check.reasons
    assert check.training_run_id is None and check.note.startswith(
        f"cooling down after run {run.id}"
    )

    no_cooldown = settings.model_copy(update={"retrain_cooldown_s": 0})
    started = trigger.check(session=committed_db, settings=no_cooldown, store=store)
    assert started.training_run_id is not None and started.training_run_id != run.id


def test_a_new_site_waits_for_samples_and_a_refused_run_does_not_start_the_cooldown(
    committed_db, site
):
    """At a new site the disagreement fires within the first hour, on a handful of
    samples. The check waits for enough without starting (and refusing) a run each time;
    a run refused anyway (its training split too small) trained nothing, so it must not
    hold the first real retraining back for a whole cooldown."""
    settings, store = site
    seed_reviews(committed_db, store)  # 11 verified samples
    short = settings.model_copy(update={"retrain_min_samples": 12})
    waiting = trigger.check(session=committed_db, settings=short, store=store)
    committed_db.commit()
    assert waiting.fired and waiting.training_run_id is None
    assert waiting.note == "waiting for samples: 11 verified, a run needs 12"
    assert waiting.note_code == {"key": "trigger_note.too_few_samples",
                                 "params": {"have": 11, "need": 12}}  # fmt: skip
    assert committed_db.scalar(select(func.count()).select_from(TrainingRun)) == 0

    # Enough in all, too few once the validation share is set aside: refused at once.
    split = settings.model_copy(update={"retrain_min_samples": 11, "retrain_val_share": 0.3})
    first = trigger.check(session=committed_db, settings=split, store=store)
    committed_db.commit()
    assert committed_db.get(TrainingRun, first.training_run_id).status == "refused"

    second = trigger.check(session=committed_db, settings=settings, store=store)
    committed_db.commit()
    assert "cooling down" not in second.note, second.note
    started = committed_db.get(TrainingRun, second.training_run_id)
    assert started.status == "queued"

    # A run that trained is what the cooldown counts from, even behind a refused one.
    committed_db.execute(
        update(TrainingRun).where(TrainingRun.id == started.id).values(status="succeeded")
    )
    committed_db.commit()
    third = trigger.check(session=committed_db, settings=settings, store=store)
    assert third.note.startswith(f"cooling down after run {started.id}"), third.note


def test_beats_task_records_a_check(committed_db, site, monkeypatch):
    settings, _ = site
    monkeypatch.setenv("LOUPE_S3_BUCKET", settings.s3_bucket)
    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", settings.s3_endpoint_url)
    reset_caches()
    try:
        from workers.tasks.retrain import check_retrain_trigger

        summary = check_retrain_trigger.apply().get()
    finally:
        monkeypatch.undo()
        reset_caches()
    assert summary["detector"]["fired"] is False
    row = committed_db.scalar(select(TriggerCheck).where(TriggerCheck.kind == "detector"))
    assert row is not None and row.id == summary["detector"]["check"]
