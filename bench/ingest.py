"""Stations uploading photos: uploads per second and round trip through the app's
`POST /api/v1/inspections`, next to a bare FastAPI endpoint (bench/ingest_bare.py) that
stores the same bytes and inserts one row, in the same run; and the inspectors'
decide-and-next with and without the uploads.

    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \\
        .venv/bin/python bench/ingest.py [--stations 16] [--seconds 20] [--sizes 0.2,4]

One fresh database, the app and the bare endpoint each in uvicorn (`--workers`, default
one per core) with a local store on this machine's disk. Each phase lasts `--seconds`:

  inspectors alone           16 inspectors decide (think 1 s), no uploads
  inspectors + app uploads   the same, while the stations upload the smallest photo
  app / bare, each size      the stations alone, against the app, then the bare endpoint

Stations (a process of their own) upload flat out: each sends its next photo as soon as
the last one is answered (`--pause` adds a mean wait). Every upload carries its own
number in a JPEG comment, so the content-addressed store writes every one. No inference
worker runs: the app's inspections stay queued, as in bench/review_decide.py.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_decide import PASSWORD, database, decide_all, logged_in, web_server  # noqa: E402
from bench.review_seed import seed  # noqa: E402
from bench.station_upload import numbered, station_photo, station_tokens  # noqa: E402

APP_PATH = "/api/v1/inspections"
BARE_PATH = "/upload"
# Sizes in MB and the pixels a photo of that size has: a 200 KB photo is a small frame, a
# 4 MB one the station's 12 MP camera (bench/station_upload.py).
FRAMES = {0.2: (1280, 960), 4.0: (4000, 3000)}


# --- stations --------------------------------------------------------------------------------


async def _station(
    base: str, path: str, token: str | None, photo: bytes, stop_at: float, first: int,
    pause: float, out: dict[str, Any],
) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    rng = random.Random(first)
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as client:
        number = first
        while time.monotonic() < stop_at:
            data = numbered(photo, number)
            number += 1
            started = time.perf_counter()
            response = await client.post(path, files=[("image", ("photo.jpg", data, "image/jpeg"))])
            out["ms"].append((time.perf_counter() - started) * 1000)
            out["status"][response.status_code] += 1
            if pause:
                await asyncio.sleep(pause * rng.uniform(0.5, 1.5))


def _stations(
    base: str, path: str, tokens: list[str | None], photo: bytes, seconds: float, pause: float,
    first: int, results: Any,
) -> None:  # fmt: skip
    out: dict[str, Any] = {"ms": [], "status": Counter()}
    stop_at = time.monotonic() + seconds

    async def all_stations() -> None:
        await asyncio.gather(*(
            _station(base, path, token, photo, stop_at, first + i * 1_000_000, pause, out)
            for i, token in enumerate(tokens)
        ))  # fmt: skip

    cpu = time.process_time()
    asyncio.run(all_stations())
    out["cpu_s"] = time.process_time() - cpu  # the stations' client shares the cores too
    results.put(out)


class Uploading:
    """Stations uploading in a forked process for `seconds`, from when it is entered."""

    runs = 0

    def __init__(self, base: str, path: str, tokens: list[str | None], photo: bytes,
                 seconds: float, pause: float, server_pid: int) -> None:  # fmt: skip
        Uploading.runs += 1
        self.server = psutil.Process(server_pid)
        context = multiprocessing.get_context("fork")
        self.results = context.Queue()
        self.seconds = seconds
        self.process = context.Process(
            target=_stations,
            args=(base, path, tokens, photo, seconds, pause, Uploading.runs * 10**8, self.results),
        )

    def server_cpu_s(self) -> float:
        """CPU seconds used so far by the server's processes (uvicorn and its workers)."""
        processes = [self.server, *self.server.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in processes)

    def __enter__(self) -> Uploading:
        self.server_cpu_at_start = self.server_cpu_s()
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.join(timeout=180)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = self.results.get(timeout=300)
        out["server_cpu_s"] = self.server_cpu_s() - self.server_cpu_at_start
        return out


# --- reporting -------------------------------------------------------------------------------


def cuts(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values or [float("nan")])[0], float("nan"), float("nan")
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], q[98]


def upload_line(label: str, out: dict[str, Any], seconds: float, megabytes: float) -> float:
    n = len(out["ms"])
    p50, p95, p99 = cuts(out["ms"])
    codes = ", ".join(f"{c}: {k}" for c, k in sorted(out["status"].items()))
    rate = f"{n / seconds:6.1f} uploads/s ({n * megabytes / seconds:5.1f} MB/s)"
    server, stations = out["server_cpu_s"] / seconds, out["cpu_s"] / seconds
    cores = f"cores: server {server:.2f}, stations {stations:.2f}"
    print(f"  {label:<34} {rate}  p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  p99 {p99:6.0f} ms  "
          f"[{codes}]  {cores}", flush=True)  # fmt: skip
    return n / seconds


def decide_line(label: str, results: list[list[tuple[float, float]]], seconds: float) -> float:
    server = [s for samples in results for s, _ in samples]
    client = [c for samples in results for _, c in samples]
    s50, s95, _ = cuts(server)
    c50, c95, _ = cuts(client)
    rate = f"{len(server) / seconds:6.1f} decisions/s"
    print(f"  {label:<34} {rate}  server p50 {s50:5.0f} ms  p95 {s95:5.0f} ms   "
          f"client p50 {c50:5.0f} ms  p95 {c95:5.0f} ms", flush=True)  # fmt: skip
    return s95


# --- the run ---------------------------------------------------------------------------------


def run(url: str, storage: Path, args: argparse.Namespace) -> None:
    sizes = [float(s) for s in args.sizes.split(",")]
    photos = {mb: station_photo(mb, FRAMES.get(mb, (1280, 960))) for mb in sizes}
    for mb, photo in photos.items():
        print(f"photo of {mb:g} MB asked: {len(photo) / 1e6:.2f} MB JPEG", flush=True)
    tokens: list[str | None] = list(station_tokens(url, args.stations))
    bare_env = {"BARE_STORAGE_DIR": str(storage / "bare")}
    app_port, bare_port = args.port, args.port + 1
    with (
        web_server(url, storage / "app", app_port, args.workers) as (app_base, app_pid),
        web_server(url, storage / "bare", bare_port, args.workers, "bench.ingest_bare:create_app",
                   bare_env) as (bare_base, bare_pid),
    ):  # fmt: skip
        print(f"app and bare endpoint up, {args.workers} worker(s) each; "
              f"{args.stations} stations, {args.inspectors} inspectors, {args.seconds:.0f} s a "
              f"phase", flush=True)  # fmt: skip
        small = min(sizes)
        for n in range(1, args.rounds + 1):
            print(f"round {n}:")

            async def inspectors() -> list[list[tuple[float, float]]]:
                async with logged_in(app_base, args.inspectors) as team:
                    return await decide_all(team, args.seconds, args.warmup, args.think)

            alone = asyncio.run(inspectors())
            p95_alone = decide_line("inspectors alone", alone, args.seconds)
            with Uploading(app_base, APP_PATH, tokens, photos[small], args.seconds + 3,
                           args.pause, app_pid) as stations:  # fmt: skip
                time.sleep(1.5)  # the stations' process is up and uploading
                busy = asyncio.run(inspectors())
                during = stations.result()
            p95_busy = decide_line(f"inspectors + app uploads {small:g} MB", busy, args.seconds)
            print(f"  {'':<34} decide-and-next server p95 with uploads / without: "
                  f"{p95_busy / p95_alone:.2f}x")  # fmt: skip
            upload_line(f"app {small:g} MB, inspectors deciding", during, args.seconds + 3, small)
            for mb in sizes:
                rates = {}
                for label, base, path, who, pid in (
                    ("app", app_base, APP_PATH, tokens, app_pid),
                    ("bare", bare_base, BARE_PATH, [None] * len(tokens), bare_pid),
                ):
                    with Uploading(base, path, who, photos[mb], args.seconds, args.pause,
                                   pid) as up:  # fmt: skip
                        out = up.result()
                    rates[label] = upload_line(f"{label} {mb:g} MB", out, args.seconds, mb)
                print(f"  {'':<34} app / bare uploads/s at {mb:g} MB: "
                      f"{rates['app'] / rates['bare']:.2f}x", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=16)
    parser.add_argument("--inspectors", type=int, default=16)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=20, help="per phase")
    parser.add_argument("--sizes", default="0.2,4", help="photo sizes in MB, comma separated")
    parser.add_argument(
        "--pause", type=float, default=0.0, help="mean s between a station's photos"
    )
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--port", type=int, default=8781)
    args = parser.parse_args()
    with (
        database(os.environ.get("LOUPE_DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"seeding {args.items} items and {args.inspectors} inspectors ...", flush=True)
        seed(url, items=args.items, inspectors=args.inspectors, password=PASSWORD)
        run(url, Path(tmp), args)


if __name__ == "__main__":
    main()
