"""`loupe retrain ...` on a real database: refusals, the lock's answer, freeze-test, and a run
followed with --wait while a worker (a thread here) trains it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli import main
from app.learning import cli as retrain_cli
from app.learning.tables import TrainingRun
from app.storage import get_store
from models.training.synthetic import make_dataset
from tests.integration.learning_support import make_user, seed_many, tiny_typed_detector
from tests.support import reset_caches, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def site(tmp_path, monkeypatch, database_url):
    """A site configured as an operator would, through LOUPE_* variables."""
    env = {
        "VAR_DIR": str(tmp_path / "var"),
        "DETECTOR_URI": str(tiny_typed_detector(tmp_path / "detector")),
        "RETRAIN_MIN_SAMPLES": "4",
        "RETRAIN_MIN_PER_CLASS": "1",
        "RETRAIN_STEPS": "3",
        "RETRAIN_BATCH_SIZE": "2",
        "RETRAIN_WARMUP_STEPS": "1",
        "DETECTOR_THRESHOLD": "0",
        "GATE_MIN_MAP50": "0",
        "GATE_MIN_PRECISION": "0",
        "GATE_MAX_REGRESSION": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"LOUPE_{name}", value)
    monkeypatch.setattr(retrain_cli, "POLL_S", 0.1)
    reset_caches()
    yield get_store()
    monkeypatch.undo()
    reset_caches()


def loupe(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["retrain", *args])


@contextmanager
def worker(db_engine, execute: Callable[[int], str]) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """A worker (a thread here) that executes the next queued run; yields its outcomes,
    complete once the block has ended."""
    import torch

    def work() -> None:
        def queued() -> int | None:
            with Session(db_engine) as session:
                return session.scalar(select(TrainingRun.id).where(TrainingRun.status == "queued"))

        torch.set_num_threads(1)
        outcomes.append(execute(wait_for(queued, timeout=30, every=0.05)))

    outcomes: list[str] = []
    thread = threading.Thread(target=work)
    thread.start()
    try:
        yield outcomes
    finally:
        thread.join(60)


def test_retrain_from_the_command_line(committed_db, db_engine, site):

    from app.learning.training import run_training

    assert "no training run yet" in loupe("status").output
    samples = make_dataset(16, seed=21, size=64)
    user = make_user(committed_db)
    seed_many(committed_db, site, samples[:2], user)
    committed_db.commit()
    refused = loupe("--now")
    assert refused.exit_code == 1 and "refused: only 2 samples; at least 4 needed" in refused.stderr

    seed_many(committed_db, site, samples[2:], user)
    committed_db.commit()
    froze = loupe("freeze-test", "--count", "4")
    assert froze.exit_code == 0 and "froze 4 items into the test set (now 4 items)" in froze.output

    with worker(db_engine, run_training) as outcomes:
        followed = loupe("--now", "--wait")
    assert outcomes == ["succeeded"]
    assert followed.exit_code == 0, followed.output
    assert "succeeded (done)" in followed.stdout and "gate passed:" in followed.stdout
    assert "metrics on the test split (4 photos): map50" in followed.stdout

    # Run ids come from a sequence that other tests' rolled-back runs also advance.
    run_id = committed_db.scalar(select(TrainingRun.id).where(TrainingRun.status == "succeeded"))
    status = loupe("status")
    assert status.exit_code == 0 and f"registered detector detector-run{run_id}-" in status.output
    assert run_id == committed_db.scalar(select(func.min(TrainingRun.id))) + 1  # after the refusal
    assert "(may be staged as challenger)" in status.output
    assert "no trigger checks yet" in loupe("checks").output

    committed_db.add(TrainingRun(status="queued", trigger="page", refusal_reasons=[], metrics={},
                                 phase="queued"))  # fmt: skip
    committed_db.commit()
    busy = loupe("--now")
    assert busy.exit_code == 1 and "a run is in progress (run" in busy.stderr


def test_a_classifier_candidate_from_the_command_line(committed_db, db_engine, site, tmp_path,
                                                      monkeypatch):  # fmt: skip

    from app.learning.classifier import run_classifier_evaluation
    from models.prompts import SITE_DIR_VARIABLE
    from models.tiny import build_tiny_classifier
    from tests.support import site_prompts

    assert "give --prompts or --uri" in loupe("classifier").output
    unknown = loupe("classifier", "--prompts", "v404", "--uri", "/m/cls")
    assert unknown.exit_code == 1 and "unknown prompt version 'v404'" in unknown.stderr

    site_prompts(tmp_path / "prompts", "v2-site")
    for name, value in {
        "CLASSIFIER_URI": str(build_tiny_classifier(tmp_path / "classifier")),
        "CLASSIFIER_EVAL_MIN_CROPS": "2", "CLASSIFIER_EVAL_MAX_CROPS": "4",
        "GATE_MIN_CLASSIFIER_ACCURACY": "0", "GATE_MIN_HUMAN_AGREEMENT": "0",
        "GATE_MAX_FALSE_POSITIVES_PER_1000": "1000",
    }.items():  # fmt: skip
        monkeypatch.setenv(f"LOUPE_{name}", value)
    monkeypatch.setenv(SITE_DIR_VARIABLE, str(tmp_path / "prompts"))
    reset_caches()
    seed_many(committed_db, site, make_dataset(4, seed=21, size=64), make_user(committed_db),
              false_alarm="stain")  # fmt: skip
    committed_db.commit()

    with worker(db_engine, run_classifier_evaluation) as outcomes:
        followed = loupe("classifier", "--prompts", "v2-site", "--wait")
    assert outcomes == ["succeeded"]
    assert followed.exit_code == 0, followed.output
    assert "classifier candidate" in followed.stdout and "with prompts v2-site" in followed.stdout
    assert "metrics on 4 verified crops: accuracy" in followed.stdout
    assert "baseline" in followed.stdout and "with prompts v2:" in followed.stdout
    assert "registered classifier" in followed.stdout and "+v2-site.r" in followed.stdout


def test_the_champion_is_instruction_tuned_from_the_command_line(
    committed_db, db_engine, site, tmp_path, monkeypatch
):
    from app.learning.testset import freeze_test_items
    from app.learning.tuning import run_tuning
    from models.tiny import build_tiny_classifier

    assert "give it alone" in loupe("classifier", "--tune", "--prompts", "v2").output
    assert "give it with --tune" in loupe("classifier", "--types", "A").output
    assert "there is no champion classifier to tune" in loupe("classifier", "--tune").stderr
    for name, value in {
        "CLASSIFIER_URI": str(build_tiny_classifier(tmp_path / "classifier")),
        "GATE_MIN_CLASSIFIER_ACCURACY": "0", "GATE_MIN_HUMAN_AGREEMENT": "0",
        "GATE_MAX_FALSE_POSITIVES_PER_1000": "1000", "TUNE_STEPS": "2",
        "TUNE_BATCH_SIZE": "2", "TUNE_RANK": "4", "TUNE_MIN_EXAMPLES": "4",
        "TUNE_MIN_TEST_CROPS": "2",
    }.items():  # fmt: skip
        monkeypatch.setenv(f"LOUPE_{name}", value)
    reset_caches()
    assert "instruction kinds are A, B, C, D; got 'A,X'" in (
        loupe("classifier", "--tune", "--types", "A,X").stderr
    )
    refused = loupe("classifier", "--tune")
    assert refused.exit_code == 1 and "no verified region answers" in refused.stderr
    seed_many(committed_db, site, make_dataset(4, seed=21, size=64), make_user(committed_db),
              false_alarm="stain")  # fmt: skip
    freeze_test_items(session=committed_db, count=2)
    committed_db.commit()

    with worker(db_engine, run_tuning) as outcomes:
        followed = loupe("classifier", "--tune", "--types", "A,D", "--wait")
    assert outcomes == ["succeeded"]
    assert followed.exit_code == 0, followed.output
    assert "registered classifier" in followed.stdout and "+lora-" in followed.stdout
