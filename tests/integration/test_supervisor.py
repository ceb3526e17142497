"""`loupe run`'s supervision over real child processes: kill -9 one, see it started again
and reported; one that keeps crashing stops the supervision. No Ray, no services."""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.policy.restarts import RestartPolicy
from app.supervisor import STATUS_FILE, Children, Supervisor, read_status
from tests.support import wait_for

pytestmark = pytest.mark.integration

# A child that starts a helper in its process group (as the worker starts beat) and one in
# a group of its own (as Ray starts its actors), and waits.
SLEEPER = """
import subprocess, sys, time
nap = [sys.executable, "-c", "import time; time.sleep(120)"]
helper = subprocess.Popen(nap)
actor = subprocess.Popen(nap, process_group=0)
open(sys.argv[1], "a").write(f"{helper.pid} {actor.pid}\\n")
print("sleeper up", flush=True)
time.sleep(120)
"""


def gone(pid: int) -> bool:
    """Exited (or a zombie nobody reaped yet, as under a container's bare init)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


class Supervised:
    """A supervisor over real children, its loop in a thread; stopped and cleaned up after."""

    def __init__(self, tmp_path: Path):
        self.output = io.StringIO()
        self.children = Children(self.output)
        policy = RestartPolicy(first_delay_s=0.3, max_crashes=3, window_s=60.0)
        self.supervisor = Supervisor(self.children, tmp_path / STATUS_FILE, policy)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.supervisor.run, args=(self.stop,), daemon=True)

    def close(self) -> None:
        # The loop stops first, or it would start again the children being stopped.
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self.children.stop(grace_s=2.0)


@pytest.fixture
def supervised(tmp_path) -> Iterator[Supervised]:
    supervised = Supervised(tmp_path)
    try:
        yield supervised
    finally:
        supervised.close()


def test_a_killed_child_is_started_again_reported_and_its_helpers_reaped(
    supervised, tmp_path, caplog
):
    supervisor, children = supervised.supervisor, supervised.children
    helpers = tmp_path / "helpers"
    argv = [sys.executable, "-c", SLEEPER, str(helpers)]
    supervisor.start("sleeper", argv, env=dict(os.environ), cwd=tmp_path)
    supervised.thread.start()
    wait_for(lambda: helpers.exists() and helpers.read_text(), timeout=20)
    first, (first_helper, first_actor) = children.procs["sleeper"].pid, _pids(helpers)
    with caplog.at_level(logging.WARNING, logger="loupe.supervisor"):
        os.kill(first, signal.SIGKILL)
        status = wait_for(lambda: _restarted(supervisor.status_path), timeout=20)
    assert status == {"state": "running", "restarts": 1, "last_exit": -9, "next_attempt_at": None}
    second = children.procs["sleeper"].pid
    assert second != first and children.exit_code("sleeper") is None
    wait_for(lambda: len(helpers.read_text().splitlines()) == 2, timeout=20)
    assert gone(first_helper), "the dead child's helper must go with it"
    assert gone(first_actor), "and so must one that left its process group"
    assert "sleeper exited with code -9 (restarts so far: 0); next attempt in 0.3 s" in caplog.text
    assert "sleeper started again (restart 1)" in caplog.text
    wait_for(lambda: supervised.output.getvalue().count("sleeper | sleeper up") == 2, timeout=10)


def _pids(helpers: Path) -> list[int]:
    return [int(pid) for pid in helpers.read_text().splitlines()[0].split()]


def _restarted(path: Path) -> dict | None:
    children = read_status(path) or {}
    sleeper = children.get("sleeper", {})
    return sleeper if sleeper.get("restarts") == 1 and sleeper.get("state") == "running" else None


def test_a_child_that_keeps_crashing_stops_the_supervision(supervised, tmp_path, caplog):
    supervisor = supervised.supervisor
    supervisor.policy = RestartPolicy(first_delay_s=0.05, max_crashes=3, window_s=60.0)
    quitter = [sys.executable, "-c", "raise SystemExit(3)"]
    supervisor.start("quitter", quitter, env=dict(os.environ), cwd=tmp_path)
    with caplog.at_level(logging.WARNING, logger="loupe.supervisor"):
        name, record = supervisor.run(threading.Event())
    assert (name, record.last_exit, record.restarts, record.gave_up) == ("quitter", 3, 2, True)
    assert "quitter exited with code 3 (restarts so far: 2); it keeps crashing" in caplog.text
    assert read_status(supervisor.status_path)["quitter"]["state"] == "gave_up"
