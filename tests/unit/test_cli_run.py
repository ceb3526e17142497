"""`loupe run` stops everything only when a child keeps crashing, and says which and why."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

import app.standalone
from app.cli import main
from app.policy.restarts import ChildRecord


class CrashingStack:
    """A stack whose worker kept crashing; records that it was stopped."""

    instances: list[CrashingStack] = []

    def __init__(self, options: object):
        self.base_url = "http://127.0.0.1:8000"
        self.credentials_path = Path("var/credentials.json")
        self.first_run, self.credentials, self.stopped = False, None, False
        CrashingStack.instances.append(self)

    def start(self) -> CrashingStack:
        return self

    def wait(self) -> tuple[str, ChildRecord]:
        return "worker", ChildRecord(started_at=0.0, restarts=4, last_exit=-9, gave_up=True)

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def signals():
    """`loupe run` installs its own SIGINT/SIGTERM handlers; pytest gets its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_child_that_keeps_crashing_stops_loupe_with_its_story(signals, monkeypatch, tmp_path):
    monkeypatch.setattr(app.standalone, "Stack", CrashingStack)
    result = CliRunner().invoke(main, ["run", "--var-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "worker keeps crashing (last exit code -9, 4 restarts); stopping Loupe" in result.output
    assert CrashingStack.instances[-1].stopped
