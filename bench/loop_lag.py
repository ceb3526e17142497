"""The web app with a probe on its event loop, for bench/review_decide.py --uploaders.

A task on the app's event loop sleeps 10 ms at a time and writes how late each wake-up
came. A request that blocks the loop (a photo decoded inside an `async def` route) delays
the next wake-up by the whole block, 100 ms and more; a machine short of CPU delays many
wake-ups by a little. The request latencies alone cannot tell the two apart on two shared
cores.

    uvicorn bench.loop_lag:create_app --factory     # with LOUPE_BENCH_LAG_FILE set
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

LAG_FILE_ENV = "LOUPE_BENCH_LAG_FILE"
TICK_S = 0.01
FLUSH_S = 0.5


async def _tick(path: Path) -> None:
    """Forever: sleep one tick, write `monotonic lateness_ms`; flush now and then."""
    with path.open("a", encoding="utf-8") as out:
        flushed = time.monotonic()
        while True:
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            late_ms = (time.perf_counter() - started - TICK_S) * 1000
            now = time.monotonic()
            out.write(f"{now:.4f} {late_ms:.2f}\n")
            if now - flushed > FLUSH_S:
                out.flush()
                flushed = now


def create_app() -> ASGIApp:
    """Loupe's app, with the probe started on the loop that serves it (at the first call)."""
    from app.web import create_app as loupe_app

    app = loupe_app()
    path = Path(os.environ[LAG_FILE_ENV])
    ticking: list[asyncio.Task[None]] = []  # held, so the task is not garbage-collected

    async def probed(scope: Scope, receive: Receive, send: Send) -> None:
        if not ticking:
            ticking.append(asyncio.get_running_loop().create_task(_tick(path)))
        await app(scope, receive, send)

    return probed


def lateness(path: Path, windows: list[tuple[float, float]]) -> list[float]:
    """The wake-ups' lateness (ms) within the given (start, end) monotonic windows."""
    late = []
    for line in path.read_text(encoding="utf-8").splitlines():
        at, ms = (float(x) for x in line.split())
        if any(start <= at <= end for start, end in windows):
            late.append(ms)
    return late


def summary(late: list[float], seconds: float) -> str:
    """How much of the time the loop could not run, and its worst wake-ups."""
    if len(late) < 2:
        return "server event loop: no wake-ups recorded"
    cuts = statistics.quantiles(late, n=100, method="inclusive")
    # Each ms a wake-up comes late is a ms the loop was busy with something else.
    stalled = sum(late) / 1000 / seconds
    return (
        f"server event loop: held up {stalled:.0%} of the time; wake-ups late p50 {cuts[49]:.1f} "
        f"ms, p95 {cuts[94]:.1f} ms, max {max(late):.0f} ms; "
        f"{sum(ms > 100 for ms in late)} over 100 ms"
    )
