"""The review queue at a large site: claims per second and claim time with a million waiting
items, through the app's own claim code and through a bare SKIP LOCKED loop, in one run.

    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \\
        .venv/bin/python bench/queue_claims.py --items 100000 --seconds 60    # short
    LOUPE_DATABASE_URL=... .venv/bin/python bench/queue_claims.py              # 1M, 600 s

A fresh database is migrated and seeded with `--items` waiting review tasks (and their
inspections) by INSERT ... SELECT generate_series, then copied as a second database
(CREATE DATABASE ... TEMPLATE), so that both loops run over the same schema, indexes,
foreign keys and rows, each on its own copy. `--claimers` claimers (threads, spread over
`--processes` processes, as uvicorn's workers and their thread pools would be) each loop:

  app   app.review.service.claim_next (the claim the review page makes, leases only, so its
        commit does not wait for the disk), then the finish through the app's code
  bare  one statement in autocommit: UPDATE ... WHERE id = (SELECT ... ORDER BY the queue
        order LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, with the same asynchronous
        commit, then the same finish as one plain statement

The finish is `--finish release` (the lease is given back, as at log-out:
app.review.service.release_user_leases; the queue stays as long, and its head takes every
claim) or `--finish decide` (the task is closed, as a decision closes it; the queue moves
on). Claim time is the claim call with its commit, as the claimer saw it. The table's and
its indexes' sizes, and the dead rows, are printed before and after each loop: a queue that
bloats without bound shows there.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_bare import conninfo  # noqa: E402

LEASE_S = 300

SEED = """
INSERT INTO "user" (username, password_hash, role, language, is_active, created_at)
SELECT 'claimer-' || n, 'x', 'inspector', 'en', true, now() FROM generate_series(1, %(users)s) n;
INSERT INTO inspection (id, station, status, route, route_reason, is_audit, created_at,
                        status_changed_at)
SELECT gen_random_uuid(), 'bench', 'routed', 'review', 'uncertain', false,
       now() - random() * interval '2 hours', now()
FROM generate_series(1, %(items)s);
INSERT INTO review_task (inspection_id, reason, is_audit, confidence, severity_rank,
                         priority_key, created_at, due_at, attempt)
SELECT id, 'uncertain', false, 0.70 + random() * 0.25, (random() * 3)::int,
       (random() * 1e12)::bigint, created_at, created_at + interval '4 hours', 0
FROM inspection;
"""

BARE_CLAIM = """
UPDATE review_task SET lease_owner_id = %s, lease_expires_at = now() + interval '300 seconds',
                       attempt = attempt + 1, claimed_at = now()
WHERE id = (
    SELECT id FROM review_task
    WHERE decided_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY priority_key, severity_rank DESC, created_at
    LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, set_config('synchronous_commit', 'off', true)"""
BARE_RELEASE = "UPDATE review_task SET lease_owner_id = NULL, lease_expires_at = NULL WHERE id = %s"
CLOSE = """UPDATE review_task SET decided_at = now(), lease_owner_id = NULL,
                                  lease_expires_at = NULL WHERE id = %s"""

SIZES = """
SELECT pg_relation_size('review_task'), pg_indexes_size('review_task'),
       n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, autovacuum_count
FROM pg_stat_user_tables WHERE relname = 'review_task'"""
INDEX_SIZES = """
SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index
WHERE indrelid = 'review_task'::regclass ORDER BY 1"""


# --- databases -------------------------------------------------------------------------------


@contextmanager
def databases(server_url: str | None, items: int, users: int) -> Iterator[tuple[str, str]]:
    """Two identical, migrated, seeded databases (app's and bare's); dropped at the end."""
    from app.embedded import EmbeddedPostgres, drop_database, ensure_database, migrate

    name = f"loupe_bench_queue_{uuid.uuid4().hex[:8]}"
    embedded = None
    with tempfile.TemporaryDirectory() as tmp:
        if server_url is None:
            embedded = EmbeddedPostgres(Path(tmp) / "pg")
            server_url = embedded.start()
        made: list[str] = []
        try:
            app_url = ensure_database(server_url, name)
            made.append(name)
            migrate(app_url, configure_logging=False)
            started = time.monotonic()
            with psycopg.connect(conninfo(app_url), autocommit=True) as conn:
                conn.execute(SEED.replace("%(users)s", str(users)).replace("%(items)s", str(items)))
                conn.execute("VACUUM ANALYZE review_task")
            print(
                f"seeded {items:,} waiting items in {time.monotonic() - started:.0f} s", flush=True
            )
            bare_name = name + "_bare"
            with psycopg.connect(conninfo(server_url), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(bare_name), sql.Identifier(name)
                    )
                )
            made.append(bare_name)
            bare_url = make_url(app_url).set(database=bare_name).render_as_string(False)
            with psycopg.connect(conninfo(bare_url), autocommit=True) as conn:
                conn.execute("ANALYZE review_task")
            yield app_url, bare_url
        finally:
            for db in made:
                drop_database(server_url, db)
            if embedded is not None:
                embedded.stop()


def sizes(url: str) -> dict[str, Any]:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(SIZES).fetchone()
        assert row is not None
        indexes = dict(conn.execute(INDEX_SIZES).fetchall())
    keys = ("table", "indexes", "live", "dead", "updates", "hot_updates", "autovacuums")
    return dict(zip(keys, row, strict=True)) | {"by_index": indexes}


def show_sizes(label: str, s: dict[str, Any]) -> None:
    mb = 1024 * 1024
    print(f"  {label}: table {s['table'] / mb:.1f} MB, indexes {s['indexes'] / mb:.1f} MB, "
          f"{s['live']:,} live / {s['dead']:,} dead rows, {s['updates']:,} updates "
          f"({s['hot_updates']:,} HOT), autovacuum ran {s['autovacuums']} times")  # fmt: skip
    print("    " + ", ".join(f"{k} {v / mb:.1f}" for k, v in s["by_index"].items()))


# --- the claimers ----------------------------------------------------------------------------


def user_ids(url: str, n: int) -> list[int]:
    with psycopg.connect(conninfo(url)) as conn:
        rows = conn.execute(
            "SELECT id FROM \"user\" WHERE username LIKE 'claimer-%%' ORDER BY id LIMIT %s", (n,)
        ).fetchall()
    return [r[0] for r in rows]


def app_claimer(url: str, finish: str) -> Callable[[int, float], list[float]]:
    """A claimer through the app's code: claim_next, then release_user_leases or a close."""
    os.environ["LOUPE_DATABASE_URL"] = url
    from sqlalchemy import text

    from app.config import get_settings
    from app.db import get_engine, session_factory
    from app.review.service import claim_next, release_user_leases

    get_settings.cache_clear()
    get_engine.cache_clear()
    session_factory.cache_clear()
    make_session = session_factory()

    def loop(user_id: int, stop_at: float) -> list[float]:
        samples = []
        while time.monotonic() < stop_at:
            with make_session() as session:
                started = time.perf_counter()
                task = claim_next(session=session, user_id=user_id, lease_seconds=LEASE_S)
                samples.append((time.perf_counter() - started) * 1000)
                if task is None:
                    break
                if finish == "release":
                    release_user_leases(session=session, user_id=user_id)
                else:
                    session.execute(text(CLOSE.replace("%s", ":id")), {"id": task.id})
                    session.commit()
        return samples

    return loop


def bare_claimer(url: str, finish: str) -> Callable[[int, float], list[float]]:
    info = conninfo(url)

    def loop(user_id: int, stop_at: float) -> list[float]:
        samples = []
        with psycopg.connect(info, autocommit=True) as conn:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                row = conn.execute(BARE_CLAIM, (user_id,)).fetchone()
                samples.append((time.perf_counter() - started) * 1000)
                if row is None:
                    break
                conn.execute(BARE_RELEASE if finish == "release" else CLOSE, (row[0],))
        return samples

    return loop


def _process(kind: str, url: str, finish: str, users: list[int], stop_at: float, out: Any) -> None:
    make = app_claimer if kind == "app" else bare_claimer
    loop = make(url, finish)
    results: list[list[float]] = [[] for _ in users]

    def run(i: int) -> None:
        results[i] = loop(users[i], stop_at)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put([ms for samples in results for ms in samples])


def run_loop(kind: str, url: str, args: argparse.Namespace) -> tuple[list[float], float]:
    """All claimers of one kind for `--seconds`: every claim's ms, and the seconds taken."""
    users = user_ids(url, args.claimers)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    # The processes start and import first; the clock starts for all of them at once.
    stop_at = time.monotonic() + 3 + args.seconds
    per = [users[i :: args.processes] for i in range(args.processes)]
    processes = [
        context.Process(target=_process, args=(kind, url, args.finish, group, stop_at, out))
        for group in per
    ]
    for process in processes:
        process.start()
    samples = [ms for _ in processes for ms in out.get()]
    for process in processes:
        process.join()
    return samples, args.seconds


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=600, help="per loop (app, bare)")
    parser.add_argument("--claimers", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--finish", choices=("release", "decide"), default="release")
    parser.add_argument("--rounds", type=int, default=1, help="app/bare pairs")
    args = parser.parse_args()

    server_url = os.environ.get("LOUPE_DATABASE_URL")
    with databases(server_url, args.items, args.claimers) as (app_url, bare_url):
        results: dict[str, list[float]] = {"app": [], "bare": []}
        seconds = 0.0
        for n in range(1, args.rounds + 1):
            for kind, url in (("app", app_url), ("bare", bare_url)):
                print(f"round {n}, {kind}: {args.claimers} claimers, {args.seconds:.0f} s, "
                      f"finish: {args.finish}", flush=True)  # fmt: skip
                show_sizes("before", sizes(url))
                samples, took = run_loop(kind, url, args)
                show_sizes("after ", sizes(url))
                results[kind] += samples
                report_line(kind, samples, took)
            seconds += args.seconds
        print(f"\nall rounds, {args.items:,} items, {args.claimers} claimers in "
              f"{args.processes} processes, finish: {args.finish}")  # fmt: skip
        for kind in ("app", "bare"):
            report_line(kind, results[kind], seconds)
        rate = {k: len(v) / seconds for k, v in results.items()}
        p99 = {k: percentile(v, 99) for k, v in results.items()}
        print(f"  app / bare: claims/s {rate['app'] / rate['bare']:.2f}x, "
              f"p99 {p99['app'] / p99['bare']:.2f}x")  # fmt: skip


def report_line(kind: str, samples: list[float], seconds: float) -> None:
    p50, p95, p99 = (percentile(samples, q) for q in (50, 95, 99))
    print(f"  {kind:<5} {len(samples) / seconds:7.0f} claims/s   claim p50 {p50:6.2f} ms   "
          f"p95 {p95:6.2f} ms   p99 {p99:6.2f} ms   max {max(samples):7.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
