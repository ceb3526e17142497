"""The names in app.task_names are the workers' tasks, all of them, and beat sends only those."""

from __future__ import annotations

import subprocess
import sys

from app import task_names

NAMES = {value for key, value in vars(task_names).items() if key.isupper()}


def test_every_name_is_a_registered_task_and_beat_sends_only_those() -> None:
    from workers.celery_app import celery

    celery.loader.import_default_modules()  # the modules in `include`, as a worker does
    assert {name for name in celery.tasks if name.startswith("loupe.")} == NAMES
    assert {entry["task"] for entry in celery.conf.beat_schedule.values()} <= NAMES


def test_the_names_load_without_celery() -> None:
    # The web app and the outbox use the names; they must not pay for loading Celery.
    probe = "import sys, app.task_names; print('celery' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
