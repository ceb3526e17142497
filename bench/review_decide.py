"""How long the server takes to record a decision and answer with the next item.

Seeds a fresh database with review items, starts the web app with uvicorn in a
subprocess, logs in N inspectors and has each decide items over HTTP exactly as the page
does it. Prints p50/p95/p99 of the server's own time (its `Server-Timing` header) and of
the time the client saw.

In the same run, on the same database, with as many inspectors thinking as long, it runs
the bare baseline (bench/review_bare.py): the statements a decision needs (lock, insert
the decision and its regions, close the task, claim the next with FOR UPDATE SKIP LOCKED,
select the next item) from a minimal psycopg client, and prints the app's times as a
multiple of it. `--rounds` alternates the two; `--no-bare` leaves the baseline out.

Each inspector looks at an item for `--think` seconds on average (uniformly 0.5x-1.5x)
before deciding. The field report's inspectors decide about 680 items a day, one per
~40 s; the default of 1 s is forty times faster. `--think 0` decides as fast as the
server answers: that measures saturation (queueing), not an inspector's wait.

`--uploaders 8 --upload-mb 4` adds camera stations (bench/station_upload.py) that send
photos of about 4 MB to `POST /api/v1/inspections` in a loop, each waiting `--upload-pause`
seconds on average between two photos. Each round then runs twice on the same server:
the inspectors alone, then the inspectors while the stations upload; `--rounds` repeats
the pair, so that a noisy machine hits both sides alike. The app runs in one uvicorn
process (`--workers 1`): an upload that blocks the event loop stalls every request of its
own process, and more processes would only hide that. Each run also prints the CPU the
app's process and the stations' client used, since they share the machine's cores, and
how late a timer on the app's event loop woke up (bench/loop_lag.py).

    .venv/bin/python bench/review_decide.py                      # embedded PostgreSQL
    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \
        .venv/bin/python bench/review_decide.py --inspectors 16 --seconds 30
    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \
        .venv/bin/python bench/review_decide.py --uploaders 8 --upload-mb 4 --seconds 20 \
        --rounds 2 --warmup 2

With LOUPE_DATABASE_URL the server is used and a database `loupe_bench_*` is created on
it (and dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import loop_lag  # noqa: E402
from bench.review_bare import run_bare  # noqa: E402
from bench.review_seed import seed  # noqa: E402
from bench.station_upload import (  # noqa: E402
    CAMERA,
    Stations,
    Uploads,
    station_photo,
    station_tokens,
)

PASSWORD = "bench-password-1"
TASK = re.compile(r'data-task-id="(\d+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TIMING = re.compile(r"app;dur=([\d.]+)")


@contextmanager
def database(server_url: str | None):
    """A fresh, migrated database: on the given server, or on an embedded PostgreSQL."""
    from app.embedded import EmbeddedPostgres, drop_database, ensure_database, migrate

    name = f"loupe_bench_{uuid.uuid4().hex[:8]}"
    embedded = None
    with tempfile.TemporaryDirectory() as tmp:
        if server_url is None:
            embedded = EmbeddedPostgres(Path(tmp) / "pg")
            server_url = embedded.start()
        try:
            url = ensure_database(server_url, name)
            migrate(url, configure_logging=False)
            yield url
        finally:
            drop_database(server_url, name)
            if embedded is not None:
                embedded.stop()


@contextmanager
def web_server(
    url: str,
    storage: Path,
    port: int,
    workers: int,
    factory: str = "app.web:create_app",
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    """The app in uvicorn, once it answers: its base URL and its process id."""
    env = {
        **os.environ,
        "LOUPE_DATABASE_URL": url,
        "LOUPE_SECRET_KEY": "bench-secret-key",
        "LOUPE_STORAGE_DIR": str(storage),
        "LOUPE_ENVIRONMENT": "development",
        **(env or {}),
    }
    command = [
        sys.executable, "-m", "uvicorn", factory, "--factory",
        "--port", str(port), "--workers", str(workers), "--log-level", "warning",
        "--no-access-log",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the web app did not start")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


class Inspector:
    """One inspector's browser: logged in once, then deciding in as many runs as asked."""

    def __init__(self, client: httpx.AsyncClient, name: str) -> None:
        self.client = client
        self.name = name
        self.rng = random.Random(name)
        self.page = ""
        self.headers: dict[str, str] = {}
        self.decided = 0

    async def log_in(self) -> None:
        token = CSRF.search((await self.client.get("/login")).text).group(1)
        form = {"username": self.name, "password": PASSWORD, "csrf_token": token}
        await self.client.post("/login", data={**form, "next": "/review"})
        self.page = (await self.client.get("/review")).text
        self.headers = {"HX-Request": "true", "X-CSRF-Token": CSRF.search(self.page).group(1)}

    async def decide_until(
        self, stop_at: float, warmup: int, think: float
    ) -> list[tuple[float, float]]:
        """Decide and take the next item until time is up: (server ms, client ms) of each
        decision after the first `warmup`."""
        samples: list[tuple[float, float]] = []
        n = 0
        while (match := TASK.search(self.page)) and time.monotonic() < stop_at:
            if think:
                await asyncio.sleep(think * self.rng.uniform(0.5, 1.5))
            verdict = ("pass", "reject", "confirm")[self.decided % 3]
            started = time.perf_counter()
            response = await self.client.post(
                f"/review/{match.group(1)}/decision",
                data={"verdict": verdict},
                headers=self.headers,
            )
            client_ms = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            self.page = response.text
            self.decided += 1
            n += 1
            if n > warmup:
                server_ms = float(TIMING.search(response.headers["server-timing"]).group(1))
                samples.append((server_ms, client_ms))
        return samples


@asynccontextmanager
async def logged_in(base: str, inspectors: int) -> AsyncIterator[list[Inspector]]:
    """The inspectors, logged in before any time is taken (a login hashes a password)."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=30))
            for _ in range(inspectors)
        ]
        team = [Inspector(client, f"bench-{i}") for i, client in enumerate(clients)]
        await asyncio.gather(*(inspector.log_in() for inspector in team))
        yield team


async def decide_all(
    team: list[Inspector], seconds: float, warmup: int, think: float
) -> list[list[tuple[float, float]]]:
    stop_at = time.monotonic() + seconds
    return await asyncio.gather(*(i.decide_until(stop_at, warmup, think) for i in team))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


async def run_clients(
    base: str, inspectors: int, seconds: float, warmup: int, think: float
) -> list[list[tuple[float, float]]]:
    async with logged_in(base, inspectors) as team:
        return await decide_all(team, seconds, warmup, think)


async def run_with_bare(
    base: str, url: str, args: argparse.Namespace
) -> tuple[list[list[tuple[float, float]]], list[list[float]]]:
    """Each round: the inspectors through the app, then the bare baseline; both together."""
    app: list[list[tuple[float, float]]] = []
    bare: list[list[float]] = []
    async with logged_in(base, args.inspectors) as team:
        for n in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"round {n}: the app ...", flush=True)
            app += await decide_all(team, args.seconds, args.warmup, args.think)
            if args.bare:
                if args.rounds > 1:
                    print(f"round {n}: the bare baseline ...", flush=True)
                names = [inspector.name for inspector in team]
                bare += await run_bare(url, names, args.seconds, args.warmup, args.think)
    return app, bare


def report_bare(app: list[list[tuple[float, float]]], bare: list[list[float]], seconds: float
                ) -> None:  # fmt: skip
    """The bare baseline's times, and the app's as multiples of them."""
    times = [ms for samples in bare for ms in samples]
    server = [s for samples in app for s, _ in samples]
    client = [c for samples in app for _, c in samples]
    cuts = {q: percentile(times, q) for q in (50, 95, 99)}
    print(f"bare baseline (psycopg, same statements): {len(times)} decisions in {seconds:.0f} s "
          f"({len(times) / seconds:.1f}/s)")  # fmt: skip
    print(f"  {'bare (round trip)':<24} p50 {cuts[50]:6.1f} ms   p95 {cuts[95]:6.1f} ms   "
          f"p99 {cuts[99]:6.1f} ms")  # fmt: skip
    for label, values in (("app server / bare", server), ("app client / bare", client)):
        ratios = (percentile(values, q) / cuts[q] for q in (50, 95, 99))
        print(f"  {label:<24} " + "   ".join(
            f"p{q} {r:5.1f}x  " for q, r in zip((50, 95, 99), ratios, strict=True)))  # fmt: skip


def report(
    results: list[list[tuple[float, float]]],
    seconds: float,
    inspectors: int,
    think: float,
    title: str = "",
) -> None:
    server = [s for samples in results for s, _ in samples]
    client = [c for samples in results for _, c in samples]
    print(f"{title}{inspectors} inspectors thinking {think:g} s per item, {len(server)} decisions "
          f"in {seconds:.0f} s ({len(server) / seconds:.1f}/s), warm-up excluded")  # fmt: skip
    for label, values in (("server (Server-Timing)", server), ("client (round trip)", client)):
        p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
        print(f"  {label:<24} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   p99 {p99:6.1f} ms")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Runs:
    """The runs of one kind (inspectors alone, or while the stations upload), together."""

    title: str
    results: list[list[tuple[float, float]]] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)  # time.monotonic
    server_cpu_s: float = 0.0
    uploads: Uploads | None = None

    def show(self, args: argparse.Namespace, lag_file: Path) -> None:
        seconds = sum(end - start for start, end in self.windows)
        report(self.results, seconds, args.inspectors, args.think, title=self.title)
        # The bench, the database and the app share the machine's cores: the app's share of
        # them and its event loop's lateness say what the latencies are made of.
        print(f"  server process used {self.server_cpu_s / seconds:.2f} cores")
        print("  " + loop_lag.summary(loop_lag.lateness(lag_file, self.windows), seconds))
        if self.uploads is not None:
            print(self.uploads.summary())


async def one_run(
    runs: Runs, team: list[Inspector], pid: int, args: argparse.Namespace, stations: Stations | None
) -> Runs:
    """The inspectors decide for `--seconds`, alone or while the stations upload."""
    started, cpu = time.monotonic(), cpu_seconds(pid)
    if stations is not None:
        stations.upload_for(args.seconds)
    results = await decide_all(team, args.seconds, args.warmup, args.think)
    ended, cpu = time.monotonic(), cpu_seconds(pid) - cpu
    uploads = None if stations is None else await asyncio.to_thread(stations.result)
    this = Runs(runs.title, results, [(started, ended)], cpu, uploads)
    runs.results += this.results
    runs.windows += this.windows
    runs.server_cpu_s += this.server_cpu_s
    if uploads is not None:
        runs.uploads = runs.uploads or Uploads()
        runs.uploads.add(uploads)
    await asyncio.sleep(2 * loop_lag.FLUSH_S)  # for the probe's last lines, outside the window
    return this


async def alternate(
    base: str, pid: int, args: argparse.Namespace, stations: Stations, lag_file: Path
) -> tuple[Runs, Runs]:
    """Each round: the inspectors alone, then the same inspectors while the stations upload."""
    alone, uploading = Runs("alone: "), Runs(f"{args.uploaders} stations uploading: ")
    async with logged_in(base, args.inspectors) as team:
        for n in range(1, args.rounds + 1):
            print(f"round {n}:")
            (await one_run(alone, team, pid, args, None)).show(args, lag_file)
            (await one_run(uploading, team, pid, args, stations)).show(args, lag_file)
    return alone, uploading


def compare(url: str, storage: Path, args: argparse.Namespace) -> None:
    """Deciding alone and deciding while the stations upload, on one server process."""
    photo = station_photo(args.upload_mb)
    tokens = station_tokens(url, args.uploaders)
    print(f"station photo: {CAMERA[0]}x{CAMERA[1]} JPEG, {len(photo) / 1e6:.2f} MB", flush=True)
    lag_file = storage.with_name("loop-lag.txt")
    probe = {loop_lag.LAG_FILE_ENV: str(lag_file)}
    with web_server(url, storage, args.port, 1, "bench.loop_lag:create_app", probe) as (base, pid):
        # The stations' process forks, so it starts before this process runs an event loop.
        with Stations(base, tokens, photo, args.upload_pause) as stations:
            alone, uploading = asyncio.run(alternate(base, pid, args, stations, lag_file))
        print(f"\nall {args.rounds} round(s), one uvicorn process:")
        alone.show(args, lag_file)
        uploading.show(args, lag_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inspectors", type=int, default=16)
    parser.add_argument("--items", type=int, default=6000)
    parser.add_argument("--seconds", type=float, default=20, help="per run (alone, uploading)")
    parser.add_argument("--warmup", type=int, default=5, help="decisions per inspector not counted")
    parser.add_argument(
        "--workers", type=int, default=None, help="uvicorn processes (default: 1 per core)"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--think", type=float, default=1.0, help="seconds per item (0: as fast as possible)"
    )
    parser.add_argument("--uploaders", type=int, default=0, help="camera stations uploading")
    parser.add_argument("--upload-mb", type=float, default=4.0, help="size of each photo (MB)")
    parser.add_argument(
        "--upload-pause", type=float, default=1.0, help="mean s between a station's photos"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="app/bare pairs (alone/uploading with --uploaders)"
    )
    parser.add_argument(
        "--no-bare", dest="bare", action="store_false", help="leave out the bare baseline"
    )
    parser.add_argument("--regions", type=int, default=None, help="per item (default 1-4)")
    args = parser.parse_args()
    if args.workers is None:
        args.workers = 1 if args.uploaders else (os.cpu_count() or 1)
    if args.uploaders and args.workers != 1:
        # An upload that blocks the event loop stalls its own process; more processes would
        # spread the stalls and hide them, and the CPU figures read one process.
        parser.error("--uploaders measures one uvicorn process: leave --workers at 1")

    server_url = os.environ.get("LOUPE_DATABASE_URL")
    with database(server_url) as url, tempfile.TemporaryDirectory() as tmp:
        print(f"seeding {args.items} items and {args.inspectors} inspectors ...", flush=True)
        seed(url, items=args.items, inspectors=args.inspectors, password=PASSWORD,
             regions=args.regions)  # fmt: skip
        storage = Path(tmp) / "photos"
        if args.uploaders:
            compare(url, storage, args)
            return
        with web_server(url, storage, args.port, args.workers) as (base, _):
            print(f"web app up with {args.workers} worker(s); deciding for {args.seconds:.0f} s",
                  flush=True)  # fmt: skip
            results, bare = asyncio.run(run_with_bare(base, url, args))
        seconds = args.seconds * args.rounds
        report(results, seconds, args.inspectors, args.think)
        if bare:
            report_bare(results, bare, seconds)


if __name__ == "__main__":
    main()
