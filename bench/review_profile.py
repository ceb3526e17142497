"""Where "decide and get the next item" spends its time, one request at a time, in process.

    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \\
        .venv/bin/python bench/review_profile.py [--decisions 300] [--regions 20] [--profile]

Seeds a fresh database, builds the app in this process and has one inspector decide
items through it (httpx's ASGI transport; the routes' thread pool is run inline, so that
one thread does all the work and cProfile sees it). Prints the server time, then per
decision: the time in the main steps (wall clock around each), each SQL statement's time
and count, the transaction commands psycopg sent (BEGIN, COMMIT, ROLLBACK, DEALLOCATE),
and with --profile the functions that took the most time. No concurrency: read it with
bench/review_decide.py, which measures 16 inspectors at once next to a bare baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_decide import CSRF, PASSWORD, TASK, TIMING, database  # noqa: E402
from bench.review_seed import seed  # noqa: E402

STEPS = (
    ("app.review.views", "item_context"),
    ("app.review.views", "render"),
    ("app.review.decisions", "decide"),
    ("app.review.decisions", "_lock_row"),
    ("app.review.decisions", "_store"),
    ("app.review.service", "claim"),
    ("app.review.service", "get_for_review"),
    ("app.review.presenters", "item_view"),
    ("app.review.stats", "inspector_numbers"),
)


def _timed(module: Any, name: str, totals: dict[str, list[float]]) -> None:
    """Wrap `module.name` (or a method: "Class.method") to add its wall time to totals."""
    owner = module
    *classes, name = name.split(".")
    for part in classes:
        owner = getattr(owner, part)
    original: Callable[..., Any] = getattr(owner, name)
    label = ".".join([module.__name__.rsplit(".", 1)[-1], *classes, name])

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label].append(time.perf_counter() - started)

    setattr(owner, name, timed)


async def _inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def instrument(
    engine: Any, step_names: tuple[tuple[str, str], ...]
) -> tuple[dict[str, list[float]], dict[str, list[float]], Counter[str]]:
    """Wrap the named steps and listen to the engine: the time in each step, each SQL
    statement's time (keyed by its first 80 characters) and psycopg's transaction commands."""
    import importlib

    import psycopg
    from sqlalchemy import event

    steps: dict[str, list[float]] = defaultdict(list)
    for module, name in step_names:
        _timed(importlib.import_module(module), name, steps)
    statements: dict[str, list[float]] = defaultdict(list)
    commands: Counter[str] = Counter()

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        conn.info["started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        key = " ".join(statement.split())[:80]
        statements[key].append(time.perf_counter() - conn.info["started"])

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    exec_command = psycopg.Connection._exec_command

    def counted(self: Any, command: Any, *rest: Any, **kw: Any) -> Any:
        commands[bytes(command).decode(errors="replace")[:30]] += 1
        return exec_command(self, command, *rest, **kw)

    psycopg.Connection._exec_command = counted  # type: ignore[method-assign]
    return steps, statements, commands


def inline_threadpool() -> None:
    """Run the routes' thread pool inline: one thread does all the work, so that cProfile
    and the step timers see it."""
    import fastapi.dependencies.utils
    import fastapi.routing

    fastapi.routing.run_in_threadpool = _inline  # type: ignore[assignment]
    fastapi.dependencies.utils.run_in_threadpool = _inline  # type: ignore[assignment]


def print_report(
    n: int, per: str, server: list[float], steps: dict[str, list[float]],
    statements: dict[str, list[float]], commands: Counter[str],
) -> None:  # fmt: skip
    """The server time, then per `per` (a decision, an upload) the steps, the statements and
    psycopg's transaction commands."""
    sql_ms = sum(sum(v) for v in statements.values()) * 1000 / n
    count = sum(len(v) for v in statements.values()) / n
    p50, mean = statistics.median(server), statistics.mean(server)
    print(f"server time (Server-Timing) p50 {p50:.1f} ms, mean {mean:.1f} ms; "
          f"SQL {sql_ms:.1f} ms in {count:.1f} statements")  # fmt: skip
    print(f"steps, ms per {per} (nested: a step's time includes the steps inside it):")
    for label, times in sorted(steps.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {sum(times) * 1000 / n:6.2f}  {label}")
    print(f"statements, ms per {per} and count:")
    for key, times in sorted(statements.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {sum(times) * 1000 / n:6.2f}  {len(times) / n:3.1f}x  {key}")
    print(f"psycopg commands per {per}: " + ", ".join(
        f"{k} {v / n:.1f}" for k, v in commands.most_common()))  # fmt: skip


def run(url: str, args: argparse.Namespace) -> None:
    os.environ["LOUPE_DATABASE_URL"] = url
    inline_threadpool()
    from app.db import get_engine
    from app.web import create_app

    steps, statements, commands = instrument(get_engine(), STEPS)

    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://t")

    def call(method: str, path: str, **kw: Any) -> httpx.Response:
        return loop.run_until_complete(client.request(method, path, **kw))

    token = CSRF.search(call("GET", "/login").text).group(1)  # type: ignore[union-attr]
    form = {"username": "bench-0", "password": PASSWORD, "csrf_token": token, "next": "/review"}
    call("POST", "/login", data=form)
    page = call("GET", "/review").text
    headers = {"HX-Request": "true", "X-CSRF-Token": CSRF.search(page).group(1)}  # type: ignore[union-attr]
    profile = cProfile.Profile() if args.profile else None
    server: list[float] = []
    for n in range(args.decisions + args.warmup):
        if n == args.warmup:
            statements.clear(), steps.clear(), commands.clear()  # type: ignore[func-returns-value]
        task = TASK.search(page).group(1)  # type: ignore[union-attr]
        if profile and n >= args.warmup:
            profile.enable()
        verdict = ("pass", "reject", "confirm")[n % 3]
        response = call("POST", f"/review/{task}/decision", data={"verdict": verdict},
                        headers=headers)  # fmt: skip
        if profile:
            profile.disable()
        response.raise_for_status()
        page = response.text
        if n >= args.warmup:
            server.append(float(TIMING.search(response.headers["server-timing"]).group(1)))  # type: ignore[union-attr]
    n = args.decisions
    print(f"{n} decisions, items with {args.regions or '1-4'} regions, page {len(page):,} bytes")
    print_report(n, "decision", server, steps, statements, commands)
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    loop.run_until_complete(client.aclose())
    get_engine().dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--regions", type=int, default=None, help="per item (default 1-4)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile's top")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("LOUPE_SECRET_KEY", "bench-secret-key")
    os.environ["LOUPE_ENVIRONMENT"] = "development"
    with (
        database(os.environ.get("LOUPE_DATABASE_URL")) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        os.environ["LOUPE_STORAGE_DIR"] = tmp
        seed(url, items=args.decisions + args.warmup + 10, inspectors=1, password=PASSWORD,
             regions=args.regions)  # fmt: skip
        run(url, args)


if __name__ == "__main__":
    main()
