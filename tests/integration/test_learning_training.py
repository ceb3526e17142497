"""Training runs end to end on tiny models: snapshot -> augment -> train a few steps ->
evaluate on the frozen test set -> gate -> publish to S3 -> register; refusals and failures.

Photos, manifests and models live in moto's S3, rows in a real PostgreSQL. The task runs
in this process (run_training, or the Celery task's .apply()), with 3 training steps.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.learning import runs, testset
from app.learning.tables import TrainingRun
from app.learning.training import run_training
from app.registry import service
from app.registry.tables import ModelAlias, ModelVersion
from app.storage import make_store
from app.task_names import TRAIN_DETECTOR
from models.detector import RTDetrDetector
from models.loading import resolve_model_dir
from models.training.synthetic import DEFECT_CLASSES, make_dataset
from tests.integration.learning_support import (
    make_user,
    new_bucket,
    s3_settings,
    seed_many,
    tiny_typed_detector,
)
from tests.support import reset_caches

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]

RELAXED_GATE = {"gate_min_map50": 0.0, "gate_min_precision": 0.0, "gate_max_regression": 1.0}


@pytest.fixture(scope="module")
def init_detector(tmp_path_factory):
    return tiny_typed_detector(tmp_path_factory.mktemp("learning") / "init-detector")


@pytest.fixture
def site(s3_endpoint, tmp_path, init_detector, monkeypatch):
    # models.model_store reads the endpoint from the environment, as the worker does.
    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", s3_endpoint)
    settings = s3_settings(
        s3_endpoint, new_bucket(s3_endpoint), tmp_path, detector_uri=str(init_detector),
        model_cache_dir=tmp_path / "cache",
    )  # fmt: skip
    return settings, make_store(settings)


def queue_run(session, settings, store, samples, test_items=4):  # type: ignore[no-untyped-def]
    seeded = seed_many(session, store, samples, make_user(session))
    testset.freeze_test_items(session=session, count=test_items)
    run = runs.start_run(session=session, store=store, settings=settings, trigger="cli")
    session.commit()
    assert run.status == "queued", run.refusal_reasons
    return run, seeded


def reread(session, run_id):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(TrainingRun, run_id)


def test_a_run_registers_a_version_whose_failed_gate_keeps_it_from_serving(committed_db, site):
    settings, store = site
    run, _ = queue_run(committed_db, settings, store, make_dataset(16, seed=21, size=64))

    assert run_training(run.id, settings=settings, store=store) == "succeeded"

    run = reread(committed_db, run.id)
    assert (run.status, run.phase, run.error) == ("succeeded", "done", None)
    assert run.step == run.total_steps == settings.retrain_steps
    assert run.loss is not None and run.epoch > 0 and run.eta_s == 0
    metrics = run.metrics
    assert metrics["evaluated_on"] == "test" and metrics["images"] == 4
    assert set(metrics["per_class"]) == set(DEFECT_CLASSES)
    assert metrics["training"]["steps"] == 3 and metrics["training"]["pool"] >= 11
    assert metrics["baseline"]["uri"] == settings.detector_uri
    # A few steps from random weights are far from the field report's bar of mAP50 0.85.
    assert run.gate["passed"] is False
    assert any(r.startswith("FAIL: map50") for r in run.gate["reasons"])

    version = committed_db.get(ModelVersion, run.model_version_id)
    assert (version.kind, version.training_run_id, version.snapshot_id) == (
        "detector", run.id, run.snapshot_id,
    )  # fmt: skip
    assert version.gate == run.gate and version.metrics["map50"] == metrics["map50"]
    assert version.uri.startswith(
        f"s3://{settings.s3_bucket}/models/detector/detector-run{run.id}-"
    )
    assert version.uri.endswith(f"#sha256={version.content_hash}")
    with pytest.raises(service.GateFailed):
        service.set_alias(session=committed_db, alias="challenger", model_version=version)
    # The published model loads through serving's path and reports the registry's version.
    served = RTDetrDetector.load(resolve_model_dir(version.uri, settings.model_cache))
    assert served.version == version.version


def test_the_next_run_fine_tunes_the_champion(committed_db, site):
    settings, store = site
    settings = settings.model_copy(update=RELAXED_GATE)
    first, _ = queue_run(committed_db, settings, store, make_dataset(16, seed=21, size=64))
    assert run_training(first.id, settings=settings, store=store) == "succeeded"
    first = reread(committed_db, first.id)
    assert first.gate["passed"] is True
    champion = committed_db.get(ModelVersion, first.model_version_id)
    service.set_alias(session=committed_db, alias="champion", model_version=champion)
    committed_db.commit()

    second = runs.start_run(session=committed_db, store=store, settings=settings, trigger="page")
    committed_db.commit()
    assert run_training(second.id, settings=settings, store=store) == "succeeded"

    baseline = reread(committed_db, second.id).metrics["baseline"]
    assert (baseline["uri"], baseline["version"]) == (champion.uri, champion.version)
    assert "map50" in baseline  # the regression check compared with the champion's numbers


def test_a_class_the_data_lacks_is_refused_by_the_worker(committed_db, site):
    settings, store = site
    no_holes = make_dataset(16, seed=21, size=64, class_probs=[0.34, 0.0, 0.33, 0.33])
    run, _ = queue_run(committed_db, settings, store, no_holes)

    assert run_training(run.id, settings=settings, store=store) == "refused"

    run = reread(committed_db, run.id)
    assert run.status == "refused" and "class hole has no examples" in run.refusal_reasons
    assert committed_db.scalar(select(func.count()).select_from(ModelVersion)) == 0


def test_a_run_that_raises_is_failed_and_serving_is_untouched(committed_db, site, monkeypatch):
    settings, store = site
    run, seeded = queue_run(committed_db, settings, store, make_dataset(16, seed=21, size=64))
    # A photo vanished from the object store after the snapshot named it.
    store.client.delete_object(Bucket=settings.s3_bucket, Key=store.prefix + seeded[0].photo_key)
    aliases = committed_db.scalar(select(func.count()).select_from(ModelAlias))
    # The Celery task reads its settings from the environment, as a worker does.
    for name in ("s3_bucket", "s3_endpoint_url", "detector_uri", "var_dir", "retrain_steps",
                 "retrain_min_samples", "retrain_min_per_class"):  # fmt: skip
        monkeypatch.setenv(f"LOUPE_{name.upper()}", str(getattr(settings, name)))
    reset_caches()
    try:
        from app.db import session_scope
        from workers.relay import relay_pending
        from workers.tasks.retrain import celery

        def deliver(task: str, payload: dict, message_id: str) -> None:
            # What the relay would send to a worker, executed here by the registered task.
            outcomes.append(celery.tasks[task].apply(kwargs=payload).get())

        outcomes: list[str] = []
        with session_scope() as session:
            assert relay_pending(session=session, publish=deliver) == 1
        assert outcomes == ["failed"]
        assert celery.tasks[TRAIN_DETECTOR].apply(args=[run.id]).get() == "not queued"
    finally:
        monkeypatch.undo()
        reset_caches()

    run = reread(committed_db, run.id)
    assert run.status == "failed" and run.finished_at is not None
    assert "ObjectNotFound" in run.error and seeded[0].photo_key in run.error
    assert committed_db.scalar(select(func.count()).select_from(ModelVersion)) == 0
    assert committed_db.scalar(select(func.count()).select_from(ModelAlias)) == aliases
    assert runs.active_run(session=committed_db) is None  # the slot is free again


def test_the_whole_chain_from_trigger_to_promotion_and_back(committed_db, site, tiny_classifier):
    """trigger -> snapshot -> augment -> train -> evaluate -> gate -> register -> experiment
    -> analysis -> promote, then rollback; Serve's plan follows every step."""
    from datetime import timedelta

    from app.db import utcnow
    from app.learning import trigger
    from app.policy.ab import AbRules
    from app.registry import experiments
    from app.registry.serving import serving_plan
    from tests.integration.review_support import decide_in_arm

    settings, store = site
    settings = settings.model_copy(
        update={**RELAXED_GATE, "classifier_uri": str(tiny_classifier),
                "retrain_min_new_samples": 8, "experiment_share": 0.5}
    )  # fmt: skip
    seed_many(committed_db, store, make_dataset(16, seed=21, size=64), make_user(committed_db))
    testset.freeze_test_items(session=committed_db, count=4)
    check = trigger.check(session=committed_db, settings=settings, store=store)
    committed_db.commit()
    assert check.fired and check.training_run_id is not None, check.reasons
    assert any("new verified samples" in r for r in check.reasons)

    assert run_training(check.training_run_id, settings=settings, store=store) == "succeeded"

    run = reread(committed_db, check.training_run_id)
    candidate = committed_db.get(ModelVersion, run.model_version_id)
    assert run.gate["passed"] is True
    experiment = service.running_experiment(session=committed_db)
    assert experiment is not None and experiment.challenger_detector_id == candidate.id
    plan = serving_plan(committed_db)
    assert plan["detector_dir"] == settings.detector_uri  # the configured model is champion
    assert plan["challenger_detector_dir"] == candidate.uri
    assert plan["challenger_share"] == 0.5

    # Inspectors agree with the challenger's arm far more often.
    kim, start = make_user(committed_db), experiment.started_at
    for i in range(20):
        when = start + timedelta(minutes=i + 1)
        decide_in_arm(committed_db, kim, "champion", i % 2 == 0, when)
        decide_in_arm(committed_db, kim, "challenger", True, when)
    outcome = experiments.analyse(
        session=committed_db, rules=AbRules(min_samples_per_arm=20), auto_promote=True,
        now=utcnow(),
    )  # fmt: skip
    assert outcome.decision == "promote", outcome.reason
    assert serving_plan(committed_db)["detector_dir"] == candidate.uri
    assert serving_plan(committed_db)["challenger_detector_dir"] is None

    experiments.rollback(session=committed_db, actor_id=kim.id, why="test")
    committed_db.commit()
    assert serving_plan(committed_db)["detector_dir"] == settings.detector_uri
