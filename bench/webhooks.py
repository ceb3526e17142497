"""Webhook delivery while 16 inspectors decide: latency from decision to receipt, and
deliveries per second.

Seeds a fresh database with review items (bench/review_seed.py), registers one webhook
endpoint that points at a receiver in this process (the standard library's threading
HTTP server), and starts what a site runs: the web app (uvicorn), the outbox relay and
a Celery worker for the `webhooks` queue, on an embedded Redis. The inspectors decide
over HTTP exactly as bench/review_decide.py has them do. The receiver checks each
request's signature and notes when it arrived; the event's `occurred_at` is when the
decision was taken, on the same machine's clock.

Prints the decisions' own latency (Server-Timing), then the delivery latency p50/p95/p99
and max, and deliveries per second over the deciding window. Every event must arrive
(the script waits up to `--drain` seconds after the inspectors stop) with a valid
signature.

`--no-endpoint` registers none: the decisions' latency without webhooks (with one, an
event costs a statement in the deciding transaction). `--receiver-delay 2` makes the
receiver take 2 s per request (past `--timeout`, so each attempt times out): the
decisions' latency should not move, while deliveries back up and are retried.
`--no-delivery` registers the endpoint but starts no relay or worker: the events are
written and never sent, which isolates what the hook costs a decision from the CPU the
deliveries take on a small machine.

    .venv/bin/python bench/webhooks.py                         # embedded PostgreSQL
    LOUPE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres \\
        .venv/bin/python bench/webhooks.py --inspectors 16 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_decide import (  # noqa: E402
    PASSWORD,
    cpu_seconds,
    database,
    decide_all,
    logged_in,
    percentile,
    report,
    run_clients,
    web_server,
)
from bench.review_seed import seed  # noqa: E402


class Arrivals:
    """What the receiver saw: per event id, when it arrived and when it occurred."""

    def __init__(self, secret: str, delay_s: float) -> None:
        self.secret, self.delay_s = secret, delay_s
        self.lock = threading.Lock()
        self.latency_s: dict[str, float] = {}
        self.arrived: list[float] = []  # time.time() of each first arrival
        self.ignored: set[str] = set()  # events of the warm-up round (their retries come later)
        self.requests = 0
        self.bad_signatures = 0

    def forget(self) -> None:
        """Start counting afresh (after the warm-up round)."""
        with self.lock:
            self.ignored |= set(self.latency_s)
            self.latency_s, self.arrived = {}, []
            self.requests = self.bad_signatures = 0

    def record(self, body: bytes, header: str) -> None:
        from app.policy.webhooks import verify

        arrived = time.time()
        event = json.loads(body)
        occurred = datetime.fromisoformat(event["occurred_at"]).timestamp()
        with self.lock:
            if event["id"] in self.ignored:
                return
            self.requests += 1
            if not verify(self.secret, body, header, now=arrived):
                self.bad_signatures += 1
            if event["id"] not in self.latency_s:
                self.latency_s[event["id"]] = arrived - occurred
                self.arrived.append(arrived)


@contextmanager
def receiver(arrivals: Arrivals, port: int) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrivals.record(body, self.headers.get("Loupe-Signature", ""))
            if arrivals.delay_s:
                time.sleep(arrivals.delay_s)
            try:
                self.send_response(204)
                self.end_headers()
            except OSError:  # the sender gave up waiting
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}/loupe"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def processes(env: dict[str, str], concurrency: int) -> Iterator[list[int]]:
    """The outbox relay and the `webhooks` queue's worker, as `loupe run` starts them;
    yields their process ids."""
    worker = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q",
              "webhooks", "-n", "bench-webhooks@%h", "--pool=threads",
              f"--concurrency={concurrency}", "--loglevel=WARNING"]  # fmt: skip
    children = [
        subprocess.Popen(worker, cwd=ROOT, env=env),
        subprocess.Popen([sys.executable, "-m", "workers.relay"], cwd=ROOT, env=env),
    ]
    try:
        yield [child.pid for child in children]
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)


def wait_for_worker(redis_url: str, timeout_s: float = 120.0) -> None:
    """Until the webhooks worker answers a ping: its start-up is not the latency measured."""
    from celery import Celery

    probe = Celery(broker=redis_url)
    deadline = time.monotonic() + timeout_s
    while not probe.control.ping(timeout=1.0):
        if time.monotonic() > deadline:
            raise RuntimeError("the webhooks worker did not start")
    probe.close()


def register_endpoint(url: str, receiver_url: str) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import NullPool

    from app.webhooks import service

    engine = create_engine(url, poolclass=NullPool)
    with Session(engine) as session:
        _, secret = service.add_endpoint(session=session, url=receiver_url, events=["decided"])
        session.commit()
    engine.dispose()
    return secret


def decided_events(url: str) -> int:
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.pool import NullPool

    from app.webhooks.tables import WebhookEvent

    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(WebhookEvent))
    engine.dispose()
    return int(count or 0)


def drain(url: str, arrivals: Arrivals, timeout_s: float, before: int = 0) -> tuple[int, float]:
    """Wait until every event written after the first `before` has arrived; (events written,
    seconds waited)."""
    started = time.monotonic()
    written = decided_events(url) - before
    while len(arrivals.latency_s) < written and time.monotonic() - started < timeout_s:
        time.sleep(0.2)
        written = decided_events(url) - before
    return written, time.monotonic() - started


def show(
    arrivals: Arrivals, written: int, window: tuple[float, float], waited: float, cpu: float
) -> None:
    latencies = sorted(v * 1000 for v in arrivals.latency_s.values())
    start, end = window
    during = sum(start <= t <= end for t in arrivals.arrived)
    print(f"webhooks: {written} events written, {len(latencies)} received "
          f"({arrivals.requests} requests, {arrivals.bad_signatures} bad signatures); "
          f"{during / (end - start):.1f} deliveries/s while the inspectors decided; "
          f"all in {waited:.1f} s after they stopped")  # fmt: skip
    per = f" ({cpu / during * 1000:.1f} ms per delivery)" if during else ""
    print(f"  relay and webhooks worker used {cpu / (end - start):.2f} cores{per}")
    if len(latencies) >= 2:
        p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
        print(f"  decision to receipt        p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   "
              f"p99 {p99:6.1f} ms   max {latencies[-1]:6.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inspectors", type=int, default=16)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="decisions per inspector not timed")
    parser.add_argument("--warmup-s", type=float, default=5, help="a first round, not counted")
    parser.add_argument("--think", type=float, default=1.0, help="seconds per item (0: flat out)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="uvicorn")
    parser.add_argument("--concurrency", type=int, default=8, help="webhook worker threads")
    parser.add_argument("--receiver-delay", type=float, default=0.0, help="s per request")
    parser.add_argument("--timeout", type=float, default=5.0, help="LOUPE_WEBHOOK_TIMEOUT_S")
    parser.add_argument(
        "--no-endpoint", action="store_true", help="no endpoint: the decisions' own baseline"
    )
    parser.add_argument(
        "--no-delivery",
        action="store_true",
        help="an endpoint, but no relay or worker: what writing the events costs a decision",
    )
    parser.add_argument("--drain", type=float, default=60.0, help="s to wait for the last")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--receiver-port", type=int, default=8767)
    args = parser.parse_args()

    from app.embedded import EmbeddedRedis

    server_url = os.environ.get("LOUPE_DATABASE_URL")
    with database(server_url) as url, tempfile.TemporaryDirectory() as tmp:
        print(f"seeding {args.items} items and {args.inspectors} inspectors ...", flush=True)
        seed(url, items=args.items, inspectors=args.inspectors, password=PASSWORD)
        redis = EmbeddedRedis(Path(tmp) / "redis")
        env = {**os.environ, "LOUPE_DATABASE_URL": url, "LOUPE_REDIS_URL": redis.start(),
               "LOUPE_WEBHOOK_TIMEOUT_S": str(args.timeout)}  # fmt: skip
        try:
            arrivals = Arrivals("", args.receiver_delay)
            with receiver(arrivals, args.receiver_port) as receiver_url:
                if not args.no_endpoint:
                    arrivals.secret = register_endpoint(url, receiver_url)
                delivering = not (args.no_endpoint or args.no_delivery)
                senders = processes(env, args.concurrency) if delivering else nullcontext([])
                web = web_server(url, Path(tmp) / "photos", args.port, args.workers, env=env)
                with senders as pids, web as (base, _):
                    if delivering:
                        wait_for_worker(env["LOUPE_REDIS_URL"])
                    results, window, written, waited, cpu = rounds(base, url, arrivals, args, pids)
            report(results, args.seconds, args.inspectors, args.think)
            if delivering:
                show(arrivals, written, window, waited, cpu)
        finally:
            redis.stop()


async def measured(
    base: str, args: argparse.Namespace, senders: list[int]
) -> tuple[list[list[tuple[float, float]]], tuple[float, float], float]:
    """The inspectors decide for `--seconds` once logged in (logins hash passwords, which
    is not deciding): their timings, the window, and the CPU seconds `senders` used in it."""
    async with logged_in(base, args.inspectors) as team:
        started, cpu = time.time(), sum(cpu_seconds(pid) for pid in senders)
        results = await decide_all(team, args.seconds, args.warmup, args.think)
        ended, cpu = time.time(), sum(cpu_seconds(pid) for pid in senders) - cpu
    return results, (started, ended), cpu


def rounds(
    base: str, url: str, arrivals: Arrivals, args: argparse.Namespace, senders: list[int]
) -> tuple[list[list[tuple[float, float]]], tuple[float, float], int, float, float]:
    """A warm-up round, not counted (the first requests of each process: imports,
    connections), then the measured one; with `senders` (the relay's and the worker's
    process ids), each round waits for its events, and the CPU seconds they used while the
    inspectors decided are measured."""
    delivering = bool(senders)
    print(f"warming up for {args.warmup_s:.0f} s", flush=True)
    asyncio.run(run_clients(base, args.inspectors, args.warmup_s, 0, args.think))
    if delivering:
        drain(url, arrivals, args.drain)
    arrivals.forget()
    already = decided_events(url)
    print(f"deciding for {args.seconds:.0f} s", flush=True)
    results, window, cpu = asyncio.run(measured(base, args, senders))
    written, waited = drain(url, arrivals, args.drain, already) if delivering else (0, 0.0)
    return results, window, written, waited, cpu


if __name__ == "__main__":
    main()
