"""Classifier candidates end to end on the tiny Qwen2.5-VL: a site's new prompts (with a
few-shot example) are evaluated on verified crops beside the champion, gated, registered
and staged as challenger with their own prompts in Serve's plan; refusals and failures.

Photos and manifests live in moto's S3, rows in a real PostgreSQL; the evaluation runs
the production classifier class on CPU, here or through the Celery task.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.learning import runs
from app.learning.classifier import BadCandidate, run_classifier_evaluation, start_classifier_run
from app.learning.crops import CROPS_FORMAT, build_crops_manifest
from app.learning.snapshot import load_manifest
from app.learning.tables import DatasetSnapshot, TrainingRun
from app.learning.trigger import _last_trained_decision
from app.outbox import Outbox
from app.registry import service
from app.registry.experiments import stage_challenger
from app.registry.serving import serving_plan
from app.registry.tables import ModelVersion
from app.storage import make_store
from models.prompts import SITE_DIR_VARIABLE
from models.training.synthetic import make_dataset
from tests.integration.learning_support import make_user, new_bucket, s3_settings, seed_many
from tests.support import reset_caches, site_prompts

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]

RELAXED = {"gate_min_classifier_accuracy": 0.0, "gate_min_human_agreement": 0.0,
           "gate_max_regression": 1.0, "gate_max_false_positives_per_1000": 1000.0}  # fmt: skip


@pytest.fixture
def site(s3_endpoint, tmp_path, tiny_classifier, monkeypatch):
    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv(SITE_DIR_VARIABLE, str(tmp_path / "prompts"))
    site_prompts(tmp_path / "prompts", "v2-site")
    settings = s3_settings(
        s3_endpoint, new_bucket(s3_endpoint), tmp_path, classifier_uri=str(tiny_classifier),
        model_cache_dir=tmp_path / "cache", classifier_eval_min_crops=4,
        classifier_eval_max_crops=10, classifier_eval_batch_size=4, **RELAXED,
    )  # fmt: skip
    return settings, make_store(settings)


def seed_crops(session, store, count: int = 6):  # type: ignore[no-untyped-def]
    """Reviewed garments with planted defects, half with a false alarm called "normal"."""
    user = make_user(session)
    samples = make_dataset(count, seed=5, size=64)
    seeded = seed_many(session, store, samples[: count // 2], user, false_alarm="stain")
    seeded += seed_many(session, store, samples[count // 2 :], user)
    session.commit()
    return samples, seeded


def reread(session, run_id):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(TrainingRun, run_id)


def test_verified_crops_include_what_the_human_called_normal(committed_db, site):
    settings, store = site
    samples, _ = seed_crops(committed_db, store)
    manifest = build_crops_manifest(session=committed_db, limit=100)
    boxes = sum(len(s.annotations) for s in samples)
    assert manifest["format"] == CROPS_FORMAT
    assert len(manifest["crops"]) == boxes + 3
    normal = [c for c in manifest["crops"] if c["defect_type"] == "normal"]
    assert len(normal) == 3 and all(c["severity"] is None for c in normal)
    # The limit keeps a stable selection: the same data gives the same crops.
    first = build_crops_manifest(session=committed_db, limit=5)
    assert first == build_crops_manifest(session=committed_db, limit=5)
    assert len(first["crops"]) == 5


def test_a_prompt_change_is_evaluated_gated_registered_and_staged(
    committed_db, site, tiny_classifier, monkeypatch
):
    settings, store = site
    seed_crops(committed_db, store)
    kim = make_user(committed_db)
    run = start_classifier_run(
        session=committed_db, store=store, settings=settings, trigger="page",
        prompt_version="v2-site", user_id=kim.id,
    )  # fmt: skip
    committed_db.commit()
    assert run.status == "queued" and run.kind == "classifier"
    assert run.candidate == {"uri": str(tiny_classifier), "prompt_version": "v2-site"}
    snapshot = committed_db.get(DatasetSnapshot, run.snapshot_id)
    assert snapshot.samples == 10 and snapshot.split_counts["test"] == 10
    assert len(load_manifest(store=store, snapshot=snapshot)["crops"]) == 10

    # The worker's way: the relay hands the outbox message to the registered Celery task,
    # which reads its settings from the environment.
    for name in ("s3_bucket", "s3_endpoint_url", "classifier_uri", "var_dir",
                 "model_cache_dir", "classifier_eval_batch_size", *RELAXED):  # fmt: skip
        monkeypatch.setenv(f"LOUPE_{name.upper()}", str(getattr(settings, name)))
    reset_caches()
    try:
        from app.db import session_scope
        from workers.relay import relay_pending
        from workers.tasks.retrain import celery

        outcomes: list[str] = []

        def deliver(task: str, payload: dict, message_id: str) -> None:
            outcomes.append(celery.tasks[task].apply(kwargs=payload).get())

        with session_scope() as session:
            assert relay_pending(session=session, publish=deliver) == 1
    finally:
        monkeypatch.undo()
        reset_caches()
    assert outcomes == ["succeeded"]

    run = reread(committed_db, run.id)
    assert run.status == "succeeded" and run.step == run.total_steps == 20  # both models
    candidate = committed_db.get(ModelVersion, run.model_version_id)
    assert candidate.kind == "classifier" and candidate.prompt_version == "v2-site"
    assert candidate.uri == str(tiny_classifier) and candidate.snapshot_id == snapshot.id
    assert candidate.version.endswith(f"+v2-site.r{run.id}")
    metrics = candidate.metrics
    assert metrics["crops"] == 10 and 0.0 <= metrics["accuracy"] <= 1.0
    assert sum(c["support"] for c in metrics["per_class"].values()) == 10
    assert metrics["per_class"]["normal"]["support"] == 3
    assert metrics["baseline"]["prompt_version"] == "v2" and metrics["baseline"]["crops"] == 10
    assert candidate.gate["passed"] is True
    assert any(r.startswith("pass: human_agreement") for r in candidate.gate["reasons"])

    # Staged: the configured classifier became the registered champion with its prompts,
    # and Serve's plan gives each arm its own prompts on the same weights.
    champion = service.get_alias(session=committed_db, alias="champion", kind="classifier")
    assert champion.prompt_version == "v2" and champion.uri == str(tiny_classifier)
    assert champion.content_hash != candidate.content_hash  # the prompts differ
    experiment = service.running_experiment(session=committed_db)
    assert experiment.challenger_classifier_id == candidate.id
    plan = serving_plan(committed_db)
    assert plan["classifier_prompt_version"] == "v2"
    assert plan["challenger_classifier_dir"] == str(tiny_classifier)
    assert plan["challenger_prompt_version"] == "v2-site"
    # Served with the temperature fitted on the crops; the champion was never calibrated.
    assert 0.05 <= metrics["temperature"] <= 20.0
    assert plan["challenger_temperature"] == pytest.approx(metrics["temperature"])
    assert plan["classifier_temperature"] is None
    # Evaluating a classifier trains no detector: the detector's trigger is unaffected.
    assert _last_trained_decision(committed_db) is None


def test_a_candidate_below_the_bar_is_registered_but_never_serves(committed_db, site):
    settings, store = site
    # No random-weight model agrees with every inspector on every crop.
    settings = settings.model_copy(update={"gate_min_human_agreement": 1.0})
    seed_crops(committed_db, store)
    run = start_classifier_run(session=committed_db, store=store, settings=settings,
                               trigger="cli", prompt_version="v2-site")  # fmt: skip
    committed_db.commit()
    assert run_classifier_evaluation(run.id, settings=settings, store=store) == "succeeded"
    run = reread(committed_db, run.id)
    version = committed_db.get(ModelVersion, run.model_version_id)
    assert version.gate_failed and run.gate["passed"] is False
    assert service.running_experiment(session=committed_db) is None
    with pytest.raises(service.GateFailed, match="failed its evaluation gate"):
        service.set_alias(session=committed_db, alias="challenger", model_version=version)


def test_the_champion_itself_is_not_a_candidate(committed_db, site):
    settings, store = site
    seed_crops(committed_db, store)
    run = start_classifier_run(session=committed_db, store=store, settings=settings,
                               trigger="cli", prompt_version="v2")  # fmt: skip
    committed_db.commit()
    assert run_classifier_evaluation(run.id, settings=settings, store=store) == "refused"
    run = reread(committed_db, run.id)
    assert run.status == "refused" and "the candidate is the champion" in run.refusal_reasons[0]
    assert "--calibrate" in run.refusal_reasons[0]  # the one way to re-evaluate it
    assert committed_db.scalar(select(func.count()).select_from(ModelVersion)) == 0


def test_a_calibration_that_does_not_help_is_registered_but_never_serves(
    committed_db, site, tiny_classifier
):
    settings, store = site
    seed_crops(committed_db, store)
    with pytest.raises(BadCandidate, match="leave the weights and prompts empty"):
        start_classifier_run(session=committed_db, store=store, settings=settings,
                             trigger="cli", prompt_version="v2-site", calibrate=True)  # fmt: skip
    run = start_classifier_run(session=committed_db, store=store, settings=settings,
                               trigger="page", calibrate=True)  # fmt: skip
    committed_db.commit()
    champion = {"uri": str(tiny_classifier), "prompt_version": "v2"}
    assert run.candidate == {**champion, "calibrate": True}
    assert run_classifier_evaluation(run.id, settings=settings, store=store) == "succeeded"

    run = reread(committed_db, run.id)
    assert run.step == run.total_steps == 10  # one model on 10 crops: it is the champion
    version = committed_db.get(ModelVersion, run.model_version_id)
    assert (version.uri, version.prompt_version) == (champion["uri"], "v2")
    metrics = version.metrics
    # Measured as it serves (from configuration: unscaled), so the fit is the temperature.
    assert metrics["served_temperature"] == 1.0
    assert metrics["temperature"] == pytest.approx(metrics["baseline"]["temperature"])
    assert metrics["baseline"]["accuracy"] == metrics["accuracy"]
    # The tiny random model is about as sure as it is right already (error 0.05 on these
    # crops); a temperature fitted on half the crops does worse on the other half.
    assert metrics["calibration_error"] < 0.1 < metrics["calibrated_error"]
    assert version.gate["passed"] is False
    assert version.gate["reasons"][-1].startswith("FAIL: calibration error")
    assert version.gate["reasons"][-1].endswith("as served (temperature 1.000)")
    assert service.get_alias(session=committed_db, alias="champion", kind="classifier") is None
    assert serving_plan(committed_db) is None  # Serve keeps to its configuration


def test_an_overconfident_champion_is_calibrated_and_serves_at_once(
    committed_db, site, tiny_classifier
):
    from app.auth.tables import AuditEvent
    from tests.integration.review_support import register_version

    settings, store = site
    seed_crops(committed_db, store)
    # Served at temperature 0.05, the model is nearly certain of answers right 30% of the time.
    sharp = register_version(committed_db, "classifier", "cls-sharp", uri=str(tiny_classifier),
                             prompt_version="v2", metrics={"temperature": 0.05})  # fmt: skip
    service.set_alias(session=committed_db, alias="champion", model_version=sharp)
    run = start_classifier_run(session=committed_db, store=store, settings=settings,
                               trigger="cli", calibrate=True)  # fmt: skip
    committed_db.commit()
    assert run_classifier_evaluation(run.id, settings=settings, store=store) == "succeeded"

    version = committed_db.get(ModelVersion, reread(committed_db, run.id).model_version_id)
    metrics = version.metrics
    assert metrics["served_temperature"] == 0.05 and metrics["calibration_error"] > 0.5
    # Temperatures compose: scaling by 0.05, then by the new fit t, is scaling by 0.05 t.
    assert metrics["temperature"] == pytest.approx(0.05 * metrics["baseline"]["temperature"])
    # The fit undoes most of the sharpening (0.05 -> 1.0 here, the edge of its range), and
    # on crops it was not fitted on the error falls (0.70 -> 0.42 here).
    assert metrics["temperature"] >= 0.5
    assert metrics["calibrated_error"] < metrics["calibration_error"] - 0.1
    assert version.gate["passed"] is True
    # Its answers are the champion's, so it replaces the champion without an experiment.
    champion = service.get_alias(session=committed_db, alias="champion", kind="classifier")
    assert champion.id == version.id and service.running_experiment(session=committed_db) is None
    assert serving_plan(committed_db)["classifier_temperature"] == pytest.approx(
        metrics["temperature"]
    )
    moved = committed_db.scalars(
        select(AuditEvent).where(AuditEvent.action == "model_alias.set")
    ).all()[-1]
    assert moved.details["from_version_id"] == sharp.id
    assert moved.details["why"].startswith("calibrated: temperature")

    # During an experiment the champion is one of its arms: no calibration then.
    other = register_version(committed_db, "classifier", "cls-other", uri=str(tiny_classifier),
                             prompt_version="v2-site")  # fmt: skip
    stage_challenger(session=committed_db, candidate=other, share=0.1, actor_id=None)
    with pytest.raises(BadCandidate, match="an experiment is running"):
        start_classifier_run(session=committed_db, store=store, settings=settings,
                             trigger="cli", calibrate=True)  # fmt: skip


def test_bad_candidates_are_refused_with_reasons(committed_db, site):
    settings, store = site
    with pytest.raises(BadCandidate, match="unknown prompt version 'v404'"):
        start_classifier_run(session=committed_db, store=store, settings=settings,
                             trigger="cli", prompt_version="v404")  # fmt: skip
    nothing = settings.model_copy(update={"classifier_uri": ""})
    with pytest.raises(BadCandidate, match="no champion classifier"):
        start_classifier_run(session=committed_db, store=store, settings=nothing,
                             trigger="cli", prompt_version="v2-site")  # fmt: skip
    # Too few verified crops: a run is recorded, refused at once, and nothing is queued.
    run = start_classifier_run(session=committed_db, store=store, settings=settings,
                               trigger="cli", prompt_version="v2-site")  # fmt: skip
    committed_db.commit()
    assert run.status == "refused" and "only 0 verified crops" in run.refusal_reasons[0]
    assert committed_db.scalar(select(func.count()).select_from(Outbox)) == 0


def test_a_classifier_run_holds_the_one_training_slot(committed_db, site):
    settings, store = site
    seed_crops(committed_db, store)
    first = start_classifier_run(session=committed_db, store=store, settings=settings,
                                 trigger="cli", prompt_version="v2-site")  # fmt: skip
    committed_db.commit()
    with pytest.raises(runs.RunInProgress, match=f"run {first.id}"):
        runs.start_run(session=committed_db, store=store, settings=settings, trigger="cli")
    committed_db.rollback()


def test_a_photo_that_changed_fails_the_run_and_serving_is_untouched(committed_db, site):
    settings, store = site
    _, seeded = seed_crops(committed_db, store)
    run = start_classifier_run(session=committed_db, store=store, settings=settings,
                               trigger="cli", prompt_version="v2-site")  # fmt: skip
    committed_db.commit()
    store.put(seeded[0].photo_key, b"not the photo", "image/png")
    assert run_classifier_evaluation(run.id, settings=settings, store=store) == "failed"
    run = reread(committed_db, run.id)
    assert run.status == "failed" and "PhotoChanged" in run.error
    assert service.running_experiment(session=committed_db) is None
    assert runs.active_run(session=committed_db) is None


def test_a_few_shot_version_from_the_reviews_is_never_judged_on_its_own_examples(
    committed_db, site
):
    from app.learning.classifier import example_crops
    from app.learning.fewshot import FewShotProblem, pick_examples, write_version
    from models.prompts import load_prompts

    settings, store = site
    seed_crops(committed_db, store)
    counts = {"stain": 2, "normal": 1, "hole": 0, "tear": 3}
    examples = pick_examples(session=committed_db, store=store, counts=counts)
    answers = [e.answer for e in examples]
    assert answers[:3] == ["stain", "stain", "normal"] and "hole" not in answers
    assert answers.count("tear") <= 3 and set(answers) <= {"stain", "normal", "tear"}
    # The same data picks the same crops.
    again = pick_examples(session=committed_db, store=store, counts=counts)
    assert [e.crop_id for e in again] == [e.crop_id for e in examples]

    path = write_version(base="v2", name="v3-site", examples=examples)
    prompts = load_prompts("v3-site")
    assert path.parent.name == "prompts" and len(prompts.examples) == len(examples)
    assert prompts.examples[0].image_path.is_file() and prompts.examples[0].answer == "stain"
    assert example_crops("v3-site") == {e.crop_id for e in examples}
    with pytest.raises(FewShotProblem, match="exists already"):
        write_version(base="v2", name="v3-site", examples=examples)
    with pytest.raises(FewShotProblem, match="not a version name"):
        write_version(base="v2", name="../up", examples=examples)
    with pytest.raises(FewShotProblem, match="between 0 and 10"):
        pick_examples(session=committed_db, store=store, counts={"stain": 11})

    run = start_classifier_run(session=committed_db, store=store, settings=settings,
                               trigger="cli", prompt_version="v3-site")  # fmt: skip
    manifest = load_manifest(store=store, snapshot=committed_db.get(DatasetSnapshot,
                                                                    run.snapshot_id))  # fmt: skip
    judged = {c["id"] for c in manifest["crops"]}
    assert judged and judged.isdisjoint(example_crops("v3-site"))


def test_few_shot_from_the_command_line(committed_db, site, monkeypatch):
    from click.testing import CliRunner

    from app.cli import main

    settings, store = site
    seed_crops(committed_db, store)
    for name in ("s3_bucket", "s3_endpoint_url", "var_dir"):
        monkeypatch.setenv(f"LOUPE_{name.upper()}", str(getattr(settings, name)))
    reset_caches()
    try:
        bad = CliRunner().invoke(main, ["prompts", "few-shot", "--name", "v3", "--type", "mud=2"])
        assert bad.exit_code == 2 and "--type wants TYPE=N" in bad.output
        made = CliRunner().invoke(
            main, ["prompts", "few-shot", "--name", "v3", "--per-type", "0", "--type", "stain=1",
                   "--type", "normal=1"],
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        assert "with 2 examples (stain 1, normal 1)" in made.stdout
        listed = CliRunner().invoke(main, ["prompts", "list"]).output
        assert "v3" in listed and "2 examples" in listed
    finally:
        monkeypatch.undo()
        reset_caches()
