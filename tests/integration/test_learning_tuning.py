"""Instruction tuning end to end on the tiny Qwen2.5-VL: the inspectors' verified answers
become an instruction snapshot, a LoRA adapter is tuned on the champion's base weights,
published, judged with the champion on the frozen test set's crops only, gated,
registered with its adapter, staged, promoted and rolled back; and the refusals.

Photos, manifests and the adapter live in moto's S3, rows in a real PostgreSQL; tuning
and judging run the production classes on CPU, here or through the Celery task.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.i18n import say, translator
from app.instructions.snapshots import load_manifest as load_instructions
from app.instructions.tables import InstructionSnapshot
from app.learning import runs
from app.learning.classifier import BadCandidate
from app.learning.snapshot import load_manifest
from app.learning.tables import DatasetSnapshot, TestSetItem, TrainedItem, TrainingRun
from app.learning.testset import eligible_items, freeze_test_items
from app.learning.tuning import run_tuning, start_tuning_run
from app.outbox import Outbox
from app.registry import experiments, service
from app.registry.serving import serving_plan
from app.registry.tables import ModelVersion
from app.storage import make_store
from app.task_names import TUNE_CLASSIFIER
from models.tuning.adapter import read_manifest, resolve_adapter_dir
from tests.integration.learning_support import make_user, new_bucket, s3_settings, seed_many
from tests.support import reset_caches

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]

RELAXED = {"gate_min_classifier_accuracy": 0.0, "gate_min_human_agreement": 0.0,
           "gate_max_regression": 1.0, "gate_max_false_positives_per_1000": 1000.0}  # fmt: skip
TINY_TUNING = {"tune_steps": 3, "tune_batch_size": 2, "tune_rank": 4, "tune_lr": 1e-2,
               "tune_min_examples": 4, "tune_min_test_crops": 2}  # fmt: skip


@pytest.fixture
def site(s3_endpoint, tmp_path, tiny_classifier, monkeypatch):
    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", s3_endpoint)
    settings = s3_settings(
        s3_endpoint, new_bucket(s3_endpoint), tmp_path, classifier_uri=str(tiny_classifier),
        model_cache_dir=tmp_path / "cache", classifier_eval_batch_size=4,
        **RELAXED, **TINY_TUNING,
    )  # fmt: skip
    return settings, make_store(settings)


def seed_items(session, store, count: int = 6, frozen: int = 3):  # type: ignore[no-untyped-def]
    """Reviewed garments (half with a false alarm called "normal"), `frozen` of them frozen."""
    from models.training.synthetic import make_dataset

    user = make_user(session)
    samples = make_dataset(count, seed=5, size=64)
    seed_many(session, store, samples[: count // 2], user, false_alarm="stain")
    seed_many(session, store, samples[count // 2 :], user)
    frozen_ids = freeze_test_items(session=session, count=frozen) if frozen else []
    session.commit()
    return frozen_ids


def reread(session, run_id):  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.get(TrainingRun, run_id)


def test_a_tuned_adapter_is_judged_on_frozen_crops_registered_staged_promoted_and_rolled_back(
    committed_db, site, tiny_classifier, monkeypatch
):
    settings, store = site
    frozen = {str(i) for i in seed_items(committed_db, store)}
    kim = make_user(committed_db)
    run = start_tuning_run(session=committed_db, store=store, settings=settings,
                           trigger="page", user_id=kim.id)  # fmt: skip
    committed_db.commit()
    assert run.status == "queued" and run.kind == "classifier"
    tune = run.candidate["tune"]
    assert run.candidate["uri"] == str(tiny_classifier) and tune["kinds"] == ["A", "B", "C", "D"]
    # Trained on the answers of items outside the frozen test set, judged on those inside.
    instructions = committed_db.get(InstructionSnapshot, tune["snapshot"])
    examples = load_instructions(store=store, snapshot=instructions)
    trained = {c["inspection_id"] for c in examples["crops"]}
    assert trained and not trained & frozen and tune["examples"] == len(examples["examples"])
    crops = load_manifest(store=store, snapshot=committed_db.get(DatasetSnapshot, run.snapshot_id))
    assert crops["frozen_only"] and {c["inspection_id"] for c in crops["crops"]} <= frozen
    # What it tunes on is reserved: no later freeze can pick those items.
    reserved = committed_db.scalars(
        select(TrainedItem).where(TrainedItem.instruction_snapshot_id == instructions.id)
    ).all()
    assert {str(r.inspection_id) for r in reserved} == trained
    assert not {str(i) for i in eligible_items(session=committed_db, limit=100)} & trained
    assert committed_db.scalar(select(Outbox.task).order_by(Outbox.id.desc()).limit(1)) == (
        TUNE_CLASSIFIER
    )

    # The worker's way: the relay hands the outbox message to the registered Celery task.
    for name in ("s3_bucket", "s3_endpoint_url", "classifier_uri", "var_dir",
                 "model_cache_dir", "classifier_eval_batch_size", *RELAXED,
                 *TINY_TUNING):  # fmt: skip
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
    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", settings.s3_endpoint_url)  # undone above
    assert outcomes == ["succeeded"]

    run = reread(committed_db, run.id)
    assert run.status == "succeeded" and run.phase == "done"
    tuning = run.metrics["tuning"]
    assert tuning["steps"] == 3 and tuning["snapshot"] == instructions.id
    version = committed_db.get(ModelVersion, run.model_version_id)
    assert version.uri == str(tiny_classifier) and version.prompt_version == "v2"
    assert version.adapter_uri.startswith(f"s3://{settings.s3_bucket}/models/adapters/")
    adapter = read_manifest(resolve_adapter_dir(version.adapter_uri, settings.model_cache))
    assert adapter["snapshot"] == instructions.id and adapter["content_hash"] == tuning["adapter"]
    assert f"+lora-{adapter['content_hash'][:10]}+v2.r{run.id}" in version.version
    metrics = version.metrics
    assert metrics["evaluated_on"] == "frozen_test_crops"
    assert metrics["crops"] == metrics["baseline"]["crops"] == len(crops["crops"])
    assert "false_positives_per_1000" in metrics and "adapter_uri" not in metrics["baseline"]
    assert any(r.startswith("pass: false_positives_per_1000") for r in version.gate["reasons"])
    assert version.gate["passed"] is True

    # Staged as challenger: Serve's plan gives the challenger arm the adapter.
    champion = service.get_alias(session=committed_db, alias="champion", kind="classifier")
    assert champion.adapter_uri is None and champion.content_hash != version.content_hash
    plan = serving_plan(committed_db)
    assert plan["challenger_classifier_dir"] == str(tiny_classifier)
    assert plan["challenger_classifier_adapter"] == version.adapter_uri
    assert plan["classifier_adapter"] is None

    experiments.promote(session=committed_db, actor_id=kim.id, why="test")
    plan = serving_plan(committed_db)
    assert plan["classifier_adapter"] == version.adapter_uri
    assert plan["challenger_classifier_adapter"] is None
    experiments.rollback(session=committed_db, actor_id=kim.id, why="test")
    assert serving_plan(committed_db)["classifier_adapter"] is None
    committed_db.commit()


def test_a_tuning_run_needs_examples_test_crops_and_a_champion_and_says_why_in_both_languages(
    committed_db, site
):
    settings, store = site
    nothing = settings.model_copy(update={"classifier_uri": ""})
    with pytest.raises(BadCandidate, match="no champion classifier to tune"):
        start_tuning_run(session=committed_db, store=store, settings=nothing, trigger="cli")
    with pytest.raises(BadCandidate, match="instruction kinds are A, B, C, D"):
        start_tuning_run(session=committed_db, store=store, settings=settings, trigger="cli",
                         kinds=("A", "E"))  # fmt: skip
    # No verified answers at all: refused at once, nothing queued.
    run = start_tuning_run(session=committed_db, store=store, settings=settings, trigger="cli")
    committed_db.commit()
    assert run.status == "refused" and "no verified region answers" in run.refusal_reasons[0]
    # Answers, but nothing frozen to judge on, and fewer examples than asked for.
    seed_items(committed_db, store, frozen=0)
    strict = settings.model_copy(update={"tune_min_examples": 10_000})
    run = start_tuning_run(session=committed_db, store=store, settings=strict, trigger="cli")
    committed_db.commit()
    assert run.status == "refused" and len(run.refusal_reasons) == 2
    english = say(translator("en"), run.refusal_reasons, run.refusal_codes)
    korean = say(translator("ko"), run.refusal_reasons, run.refusal_codes)
    assert english[0].startswith("only ") and "at least 10000 are needed" in english[0]
    assert "only 0 crops of frozen test items" in english[1]
    assert "최소 10000개가 필요합니다" in korean[0] and "고정 테스트 항목" in korean[1]
    assert committed_db.scalar(select(func.count()).select_from(Outbox)) == 0
    # A refused run reserves nothing: every item may still be frozen.
    assert committed_db.scalar(select(func.count()).select_from(TrainedItem)) == 0
    assert committed_db.scalar(select(func.count()).select_from(TestSetItem)) == 0


def test_a_tuning_run_holds_the_one_training_slot(committed_db, site):
    settings, store = site
    seed_items(committed_db, store)
    first = start_tuning_run(session=committed_db, store=store, settings=settings, trigger="cli")
    committed_db.commit()
    assert first.status == "queued"
    with pytest.raises(runs.RunInProgress, match=f"run {first.id}"):
        start_tuning_run(session=committed_db, store=store, settings=settings, trigger="cli")
    committed_db.rollback()


def test_a_champion_that_changed_before_the_worker_started_refuses_the_run(
    committed_db, site, tmp_path
):
    from tests.integration.review_support import register_version

    settings, store = site
    seed_items(committed_db, store)
    run = start_tuning_run(session=committed_db, store=store, settings=settings, trigger="cli")
    committed_db.commit()
    other = register_version(committed_db, "classifier", "cls-other", uri=str(tmp_path / "x"),
                             prompt_version="v2")  # fmt: skip
    service.set_alias(session=committed_db, alias="champion", model_version=other)
    committed_db.commit()
    assert run_tuning(run.id, settings=settings, store=store) == "refused"
    run = reread(committed_db, run.id)
    assert "weights changed after the tuning run was queued" in run.refusal_reasons[0]
