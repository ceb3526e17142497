"""The chaos suite: camera stations keep uploading while, in turn, the Celery worker is killed,
Redis is restarted, the Serve app is killed and PostgreSQL is restarted. Afterwards:

- every upload a station saw accepted (201, or 200 for its retry) is routed exactly once:
  one inspection per upload, one route, a review task only for a review route and never
  two, no result recorded twice (bench/chaos_checks.py);
- nothing went to an automatic route because something broke;
- the stations got only 201, 200, or 503 with Retry-After: never a 500, never a dropped
  connection;
- and how long each fault took to heal: until /healthz answered 200 again, and until an
  item uploaded after the fault was routed.

    make chaos                                            # 2,000 uploads, every fault
    .venv/bin/python bench/chaos.py --uploads 300 --faults worker,redis

The system runs as `loupe run` runs it (app.standalone.Stack, whose supervisor starts a
crashed child again) on a PostgreSQL and a Redis of its own, so that they can be restarted.
tests/integration/test_chaos.py runs a short version in `make test`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.embedded import EmbeddedPostgres, EmbeddedRedis, ensure_database  # noqa: E402
from app.standalone import Stack, StackError, StackOptions  # noqa: E402
from bench.chaos_checks import verify  # noqa: E402
from bench.chaos_clients import KEY_PREFIX, Board, Inspector, Station  # noqa: E402
from bench.station_upload import station_photo, station_tokens  # noqa: E402
from tests.support import free_port  # noqa: E402

FAULTS = ("worker", "redis", "serve", "postgres")
STACK_SETTINGS = {
    # The models find at most two regions (random weights find boxes everywhere): inference
    # stays fast enough on two cores for the stations' pace.
    "LOUPE_DETECTOR_MAX_REGIONS": "2",
    # A quarter of the automatic routes go to review as audits: the inspector has work.
    "LOUPE_AUDIT_RATE": "0.25",
}


@dataclass(frozen=True)
class ChaosOptions:
    uploads: int = 2000  # accepted uploads to reach; stations go on until the last fault healed
    stations: int = 8
    rate: float = 3.0  # uploads per second, all stations together
    faults: tuple[str, ...] = FAULTS
    down_s: float = 5.0  # how long Redis and PostgreSQL stay away in their restarts
    settle_s: float = 10.0  # after a fault healed, before the next one
    heal_timeout_s: float = 300.0
    drain_timeout_s: float = 600.0  # after the last upload, for every item to be routed
    env: dict[str, str] = field(default_factory=dict)  # extra LOUPE_* settings


@dataclass
class Fault:
    name: str
    what: str
    at: datetime
    healthy_after_s: float | None = None  # /healthz answered 200 again
    routing_after_s: float | None = None  # an item uploaded after the fault was routed
    unavailable: int = 0  # 503 answers the stations and the inspector got meanwhile
    failed_to_review: int = 0  # items sent to review because their inference failed


@dataclass
class Report:
    options: ChaosOptions
    faults: list[Fault]
    accepted: int
    statuses: dict[str, int]
    seconds: float
    drain_s: float | None  # from the last upload until every item was routed
    routes: dict[str, int]
    decisions: int  # the inspector's, as stored
    problems: list[str]

    def table(self) -> str:
        lines = [
            "| fault | /healthz 200 again after | an item uploaded after it routed after "
            "| 503 answers | sent to review by a failed inference |",
            "|---|---|---|---|---|",
        ]
        for f in self.faults:
            lines.append(
                f"| {f.what} | {_seconds(f.healthy_after_s)} | {_seconds(f.routing_after_s)} "
                f"| {f.unavailable} | {f.failed_to_review} |"
            )
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        routes = ", ".join(f"{route}: {n}" for route, n in sorted(self.routes.items()))
        verdict = (
            "every check passed"
            if not self.problems
            else "PROBLEMS:\n- " + "\n- ".join(self.problems)
        )
        return "\n".join(
            [
                *lines,
                "",
                f"{self.accepted} uploads accepted from {self.options.stations} stations in "
                f"{self.seconds:.0f} s; answers {codes}; routes {routes}; every item routed "
                f"{_seconds(self.drain_s)} after the last upload; the inspector made "
                f"{self.decisions} decisions.",
                verdict,
            ]
        )


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


class Chaos:
    """The stack, the services under it, and how to break each part."""

    def __init__(self, work_dir: Path, options: ChaosOptions, log: Path):
        self.options = options
        self.postgres = EmbeddedPostgres(work_dir / "postgres")
        self.redis = EmbeddedRedis(work_dir / "redis")
        self.work_dir = work_dir
        self.log_path = log
        self.stack: Stack | None = None
        self.given_up: tuple[str, object] | None = None
        self._stop_supervising = threading.Event()
        self._log = log.open("a")  # every child's lines, prefixed with its name
        self._supervisor: threading.Thread | None = None

    def start(self, models: tuple[Path, Path] | None) -> Stack:
        database_url = ensure_database(self.postgres.start(), "loupe")
        redis_url = self.redis.start()
        detector, classifier = models or (None, None)
        self.stack = Stack(
            StackOptions(
                var_dir=self.work_dir / "var",
                port=free_port(),
                serve_port=free_port(),
                database_url=database_url,
                redis_url=redis_url,
                detector_uri=str(detector) if detector else None,
                classifier_uri=str(classifier) if classifier else None,
                secret_key="chaos-secret-key",
                env={**STACK_SETTINGS, **self.options.env},
                output=self._log,
            )
        )
        self.stack.start()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        return self.stack

    def _supervise(self) -> None:
        assert self.stack is not None
        self.given_up = self.stack.wait(self._stop_supervising)

    def stop(self) -> None:
        self._stop_supervising.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        if self.stack is not None:
            self.stack.stop()
        self.redis.stop()
        self.postgres.stop()
        self._log.close()

    def break_(self, name: str) -> str:
        """Cause fault `name`; returns what was done, in words."""
        assert self.stack is not None
        down = self.options.down_s
        if name in ("worker", "serve"):
            pid = self.stack.child_pid(name)
            assert pid is not None, f"{name} is not running"
            os.killpg(pid, signal.SIGKILL)  # the child and all it started (beat, Ray)
            return {"worker": "Celery worker killed (-9)", "serve": "Serve app killed (-9)"}[name]
        if name == "redis":
            self.redis.restart(down)
            return f"Redis restarted ({down:.0f} s down)"
        if name == "postgres":
            self.postgres.restart(down)
            return f"PostgreSQL restarted ({down:.0f} s down)"
        raise ValueError(f"no fault named {name!r}; known: {', '.join(FAULTS)}")


def run(options: ChaosOptions, work_dir: Path, models: tuple[Path, Path] | None = None) -> Report:
    chaos = Chaos(work_dir, options, work_dir / "stack.log")
    try:
        stack = chaos.start(models)
        return _run(chaos, stack, options)
    except StackError as exc:
        tail = "\n".join(chaos.log_path.read_text(errors="replace").splitlines()[-60:])
        raise StackError(f"{exc}\n--- {chaos.log_path} ---\n{tail}") from None
    finally:
        chaos.stop()


def _run(chaos: Chaos, stack: Stack, options: ChaosOptions) -> Report:
    engine = create_engine(stack.database_url, poolclass=NullPool)
    tokens = station_tokens(stack.database_url, options.stations)
    photo = station_photo(0.05, size=(640, 480))
    board = Board(window=None)
    pace_s = options.stations / options.rate
    stations = [
        Station(i, stack.base_url, token, photo, pace_s, board) for i, token in enumerate(tokens)
    ]
    assert stack.credentials is not None, "a fresh database gets its first users"
    password = stack.credentials["users"]["inspector"]["password"]
    people = [*stations, Inspector(stack.base_url, "inspector", password, board)]
    started = time.monotonic()
    for person in people:
        person.start()
    faults = []
    try:
        for i, name in enumerate(options.faults):
            due = options.uploads * (i + 1) / (len(options.faults) + 1)
            _wait(lambda due=due: board.accepted_count() >= due, timeout=options.heal_timeout_s)
            faults.append(_fault(chaos, name, engine, board, stack.base_url))
            time.sleep(options.settle_s)
        _wait(lambda: board.accepted_count() >= options.uploads, timeout=options.drain_timeout_s)
    finally:
        board.stop.set()
        for person in people:
            person.join(timeout=120)
    seconds = time.monotonic() - started
    drained = _wait(lambda: _unrouted(engine) == 0, timeout=options.drain_timeout_s)
    _count_failures(engine, faults)
    problems = board.problems + verify(stack.database_url, board.accepted, KEY_PREFIX)
    if chaos.given_up is not None:
        problems.append(f"the supervisor gave up on {chaos.given_up[0]}")
    with engine.connect() as conn:
        routes = dict(conn.execute(text("SELECT route, count(*) FROM inspection GROUP BY 1")).all())
        decisions = int(conn.scalar(text("SELECT count(*) FROM decision")) or 0)
    engine.dispose()
    return Report(
        options, faults, len(board.accepted), dict(board.statuses), seconds, drained,
        {str(k): v for k, v in routes.items()}, decisions, problems,
    )  # fmt: skip


def _fault(chaos: Chaos, name: str, engine: Engine, board: Board, base_url: str) -> Fault:
    at = datetime.now(UTC)
    t0 = time.monotonic()
    board.window = name
    health = HealthWatch(base_url, t0)
    health.start()
    try:
        fault = Fault(name, chaos.break_(name), at)
        deadline = t0 + chaos.options.heal_timeout_s
        while time.monotonic() < deadline:
            if fault.routing_after_s is None and (routed := _first_routed_since(engine, at)):
                fault.routing_after_s = (routed - at).total_seconds()
            if fault.routing_after_s is not None and health.steady_for() >= STEADY_S:
                break
            time.sleep(0.5)
    finally:
        health.stop.set()
        health.join()
    fault.healthy_after_s = health.healthy_after()
    fault.unavailable = board.unavailable.get(name, 0)
    print(f"  {fault.what}: healthy after {_seconds(fault.healthy_after_s)}, routing again after "
          f"{_seconds(fault.routing_after_s)}", flush=True)  # fmt: skip
    return fault


STEADY_S = 5.0  # /healthz 200 this long without a break counts as healed


class HealthWatch(threading.Thread):
    """Asks /healthz four times a second from the moment of the fault. The fault healed when
    the answers became 200 for good: a dead part can look alive for a moment (a killed Serve
    app's replicas answer until Ray's reaper gets them), so the first 200 is not enough."""

    def __init__(self, base_url: str, t0: float):
        super().__init__(daemon=True)
        self.base_url, self.t0 = base_url, t0
        self.stop = threading.Event()
        self._steady_since: float | None = None  # start of the latest run of 200s

    def run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self.stop.is_set():
                asked = time.monotonic()
                if not _healthy(client, self.base_url):
                    self._steady_since = None
                elif self._steady_since is None:
                    self._steady_since = asked
                self.stop.wait(0.25)

    def steady_for(self) -> float:
        since = self._steady_since
        return 0.0 if since is None else time.monotonic() - since

    def healthy_after(self) -> float | None:
        since = self._steady_since
        return None if since is None else since - self.t0


def _healthy(client: httpx.Client, base_url: str) -> bool:
    try:
        return client.get(base_url + "/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _first_routed_since(engine: Engine, at: datetime) -> datetime | None:
    try:
        with engine.connect() as conn:
            return conn.scalar(
                text(
                    "SELECT min(routed_at) FROM inspection WHERE created_at >= :at "
                    "AND routed_at IS NOT NULL"
                ),
                {"at": at},
            )
    except Exception:  # PostgreSQL is the part that is away
        return None


def _unrouted(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT count(*) FROM inspection WHERE status <> 'routed'")))


def _count_failures(engine: Engine, faults: list[Fault]) -> None:
    """Items whose inference failed for good, counted against the fault before them."""
    with engine.connect() as conn:
        failed = conn.scalars(
            text(
                "SELECT routed_at FROM inspection "
                "WHERE inference_error IS NOT NULL AND routed_at IS NOT NULL"
            )
        ).all()
    for i, fault in enumerate(faults):
        end = faults[i + 1].at if i + 1 < len(faults) else None
        fault.failed_to_review = sum(
            1 for t in failed if t >= fault.at and (end is None or t < end)
        )


def _wait(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `condition` held, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=2000)
    parser.add_argument("--stations", type=int, default=8)
    parser.add_argument("--rate", type=float, default=3.0, help="uploads per second in all")
    parser.add_argument("--faults", default=",".join(FAULTS), help="in this order")
    parser.add_argument("--down", type=float, default=5.0, help="Redis/PostgreSQL down, s")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    # A kill of the suite must still stop the servers it started (the `finally` in run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    options = ChaosOptions(
        uploads=args.uploads,
        stations=args.stations,
        rate=args.rate,
        faults=tuple(f for f in args.faults.split(",") if f),
        down_s=args.down,
    )
    work_dir = Path(tempfile.mkdtemp(prefix="loupe-chaos-"))
    faults = ", ".join(options.faults)
    print(f"chaos: {options.uploads} uploads from {options.stations} stations at "
          f"{options.rate}/s; faults {faults}; work dir {work_dir}", flush=True)  # fmt: skip
    report = run(options, work_dir)
    print(report.table())
    if not args.keep and not report.problems:
        import shutil

        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
