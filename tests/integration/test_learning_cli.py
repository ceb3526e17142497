"""`loupe retrain ...` on a real database: refusals, the lock's answer, freeze-test, and a run
followed with --wait while a worker (a thread here) trains it."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import select
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


def test_retrain_from_the_command_line(committed_db, db_engine, site):
    import torch

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

    def worker() -> None:
        def queued() -> int | None:
            with Session(db_engine) as session:
                return session.scalar(select(TrainingRun.id).where(TrainingRun.status == "queued"))

        torch.set_num_threads(1)
        outcomes.append(run_training(wait_for(queued, timeout=30, every=0.05)))

    outcomes: list[str] = []
    thread = threading.Thread(target=worker)
    thread.start()
    followed = loupe("--now", "--wait")
    thread.join(60)
    assert outcomes == ["succeeded"]
    assert followed.exit_code == 0, followed.output
    assert "succeeded (done)" in followed.stdout and "gate passed:" in followed.stdout
    assert "metrics on the test split (4 photos): map50" in followed.stdout

    status = loupe("status")
    assert status.exit_code == 0 and "registered detector detector-run2-" in status.output
    assert "(may be staged as challenger)" in status.output
    assert "no trigger checks yet" in loupe("checks").output

    committed_db.add(TrainingRun(status="queued", trigger="page", refusal_reasons=[], metrics={},
                                 phase="queued"))  # fmt: skip
    committed_db.commit()
    busy = loupe("--now")
    assert busy.exit_code == 1 and "a run is in progress (run" in busy.stderr
