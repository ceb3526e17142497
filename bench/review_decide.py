"""How long the server takes to record a decision and answer with the next item.

Seeds a fresh database with review items, starts the web app with uvicorn in a
subprocess, logs in N inspectors and has each decide items over HTTP exactly as the page
does it. Prints p50/p95/p99 of the server's own time (its `Server-Timing` header) and of
the time the client saw.

Each inspector looks at an item for `--think` seconds on average (uniformly 0.5x-1.5x)
before deciding. The field report's inspectors decide about 680 items a day, one per
~40 s; the default of 1 s is forty times faster. `--think 0` decides as fast as the
server answers: that measures saturation (queueing), not an inspector's wait.

    .venv/bin/python bench/review_decide.py                      # embedded PostgreSQL
    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \
        .venv/bin/python bench/review_decide.py --inspectors 16 --seconds 30

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
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_seed import seed  # noqa: E402

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
def web_server(url: str, storage: Path, port: int, workers: int):
    env = {
        **os.environ,
        "LOUPE_DATABASE_URL": url,
        "LOUPE_SECRET_KEY": "bench-secret-key",
        "LOUPE_STORAGE_DIR": str(storage),
        "LOUPE_ENVIRONMENT": "development",
    }
    command = [
        sys.executable, "-m", "uvicorn", "app.web:create_app", "--factory",
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
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


async def inspector(
    base: str, name: str, stop_at: float, warmup: int, think: float
) -> list[tuple[float, float]]:
    """Log in, then decide and take the next item until time is up: (server ms, client ms)."""
    samples: list[tuple[float, float]] = []
    rng = random.Random(name)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = CSRF.search((await client.get("/login")).text).group(1)
        form = {"username": name, "password": PASSWORD, "csrf_token": token, "next": "/review"}
        await client.post("/login", data=form)
        page = (await client.get("/review")).text
        token = CSRF.search(page).group(1)
        headers = {"HX-Request": "true", "X-CSRF-Token": token}
        n = 0
        while (match := TASK.search(page)) and time.monotonic() < stop_at:
            if think:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
            verdict = ("pass", "reject", "confirm")[n % 3]
            started = time.perf_counter()
            response = await client.post(
                f"/review/{match.group(1)}/decision", data={"verdict": verdict}, headers=headers
            )
            client_ms = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            page = response.text
            n += 1
            if n > warmup:
                server_ms = float(TIMING.search(response.headers["server-timing"]).group(1))
                samples.append((server_ms, client_ms))
    return samples


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


async def run_clients(base: str, inspectors: int, seconds: float, warmup: int, think: float):
    stop_at = time.monotonic() + seconds
    jobs = [inspector(base, f"bench-{i}", stop_at, warmup, think) for i in range(inspectors)]
    return await asyncio.gather(*jobs)


def report(
    results: list[list[tuple[float, float]]], seconds: float, inspectors: int, think: float
) -> None:
    server = [s for samples in results for s, _ in samples]
    client = [c for samples in results for _, c in samples]
    print(f"{inspectors} inspectors thinking {think:g} s per item, {len(server)} decisions "
          f"in {seconds:.0f} s ({len(server) / seconds:.1f}/s), warm-up excluded")  # fmt: skip
    for label, values in (("server (Server-Timing)", server), ("client (round trip)", client)):
        p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
        print(f"  {label:<24} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   p99 {p99:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inspectors", type=int, default=16)
    parser.add_argument("--items", type=int, default=6000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=int, default=5, help="decisions per inspector not counted")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="uvicorn worker processes")  # fmt: skip
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--think", type=float, default=1.0, help="seconds per item (0: as fast as possible)"
    )
    args = parser.parse_args()

    server_url = os.environ.get("LOUPE_DATABASE_URL")
    with database(server_url) as url, tempfile.TemporaryDirectory() as storage:
        print(f"seeding {args.items} items and {args.inspectors} inspectors ...", flush=True)
        seed(url, items=args.items, inspectors=args.inspectors, password=PASSWORD)
        with web_server(url, Path(storage), args.port, args.workers) as base:
            print(f"web app up with {args.workers} worker(s); deciding for {args.seconds:.0f} s",
                  flush=True)  # fmt: skip
            results = asyncio.run(
                run_clients(base, args.inspectors, args.seconds, args.warmup, args.think)
            )
        report(results, args.seconds, args.inspectors, args.think)


if __name__ == "__main__":
    main()
