"""A Celery worker killed with -9 in the middle of an inference: once a worker runs again,
the item is routed, exactly once, within seconds (the sweep's grace and interval are short
here; with the defaults it takes at most about a minute). Real PostgreSQL, Redis, a Celery
worker with beat, and the outbox relay; the Serve app is a small HTTP stand-in whose first
answer never comes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.inspections.tables import Inspection
from app.outbox import Outbox
from app.review.tables import ReviewTask
from tests.integration.test_models_worker import region, result, submitted
from tests.integration.test_pipeline import publisher
from tests.support import reset_caches, wait_for
from workers.relay import run_forever

pytestmark = pytest.mark.integration

SWEEP = {"LOUPE_SWEEP_INTERVAL_S": "1", "LOUPE_INFLIGHT_GRACE_S": "1"}
BOUND_S = 30.0  # from the second worker's "ready" to the item routed, with SWEEP above


class StandInServe(ThreadingHTTPServer):
    """Answers like the Serve app, except that the first inference hangs (its worker dies)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.first_request = threading.Event()
        self.release = threading.Event()
        self.inferences = 0
        self.daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the answer to the killed worker finds its socket closed: expected

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/inspection"


class _Handler(BaseHTTPRequestHandler):
    server: StandInServe

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path.endswith("/explain"):
            regions = json.loads(body)["regions"]
            return self._answer({"reasons": [f"reason {i}" for i in range(len(regions))]})
        self.server.inferences += 1
        if self.server.inferences == 1:
            self.server.first_request.set()
            self.server.release.wait(60)  # the worker that asked is killed meanwhile
        return self._answer(result(region(0.8)).to_dict())

    def _answer(self, data: dict) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[StandInServe]:
    server = StandInServe()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def crash_env(committed_db, redis_url, serve, tmp_path, monkeypatch) -> Iterator[dict[str, str]]:
    env = {
        "LOUPE_STORAGE_DIR": str(tmp_path / "photos"),
        "LOUPE_AUDIT_RATE": "0",
        "LOUPE_SERVE_URL": serve.url,
        **SWEEP,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    stop = threading.Event()  # the outbox relay, as `loupe run` runs it
    relay = threading.Thread(target=run_forever, args=(stop, publisher(redis_url)), daemon=True)
    relay.start()
    yield {**os.environ, "PYTHONUNBUFFERED": "1"}
    stop.set()
    relay.join(timeout=5)
    reset_caches()


class Worker:
    """`celery worker -B` as `loupe run` starts it, in a process group of its own."""

    def __init__(self, name: str, env: dict[str, str], tmp_path: Path):
        self.log = tmp_path / f"{name}.log"
        argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-B",
                "-Q", "celery", "--pool=threads", "--concurrency=2", "--loglevel=INFO",
                "--without-mingle", "--without-gossip", "-n", f"{name}@%h",
                "-s", str(tmp_path / "celerybeat-schedule")]  # fmt: skip
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip

    def ready(self) -> bool:
        return " ready." in self.log.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # the worker and its beat, as a crash takes both
        except ProcessLookupError:
            return
        self.proc.wait(timeout=30)


def status(inspection_id: uuid.UUID) -> Inspection:
    with session_scope() as session:
        return session.get(Inspection, inspection_id)


def count(model, inspection_id: uuid.UUID | None = None) -> int:  # type: ignore[no-untyped-def]
    with session_scope() as session:
        query = select(func.count()).select_from(model)
        if inspection_id is not None:
            query = query.where(model.inspection_id == inspection_id)
        return session.scalar(query)


def test_an_item_in_flight_when_its_worker_dies_is_routed_once_soon_after(
    crash_env, serve, tmp_path
):
    inspection_id = submitted()
    first = Worker("first", crash_env, tmp_path)
    try:
        assert serve.first_request.wait(60), first.log.read_text()
        time.sleep(2.5)  # its own sweeps run meanwhile and leave the item it holds alone
        assert status(inspection_id).status == "inferring" and count(Outbox) == 1
    finally:
        first.kill()
    second = Worker("second", crash_env, tmp_path)
    try:
        wait_for(second.ready, timeout=60)
        ready_at = time.monotonic()
        routed = wait_for(lambda: _routed(inspection_id), timeout=BOUND_S)
        print(f"routed {time.monotonic() - ready_at:.1f} s after the second worker was ready")
    finally:
        second.kill(signal.SIGTERM)
    assert (routed.route, routed.route_reason) == ("review", "uncertain")
    assert count(ReviewTask, inspection_id) == 1 and serve.inferences == 2
    assert count(Outbox) == 2  # the upload's message, and the sweep's: dispatched again once
    # The dead worker's own message comes back after the broker's visibility timeout.
    from workers.tasks.inference import run_inference

    assert run_inference.apply(args=[str(inspection_id)]).get() == "already routed"
    assert count(ReviewTask, inspection_id) == 1


def _routed(inspection_id: uuid.UUID) -> Inspection | None:
    inspection = status(inspection_id)
    return inspection if inspection.status == "routed" else None
