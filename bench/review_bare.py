"""The bare baseline of "decide and get the next item": the statements a decision needs, sent
by a minimal psycopg client straight to the same database, with no web app in between.

bench/review_decide.py runs it in the same run as the app, with as many inspectors
thinking as long, so that the app's time can be read as a multiple of this floor on a
machine whose load changes from minute to minute. One transaction per decision:

  lock the task            SELECT ... FROM review_task WHERE id = $1 FOR UPDATE
  the decision             INSERT INTO decision ... RETURNING id
  its regions              INSERT INTO decision_region ... SELECT ... FROM region
  close the task           UPDATE review_task SET decided_at = ..., decision_id = ...
  claim the next           UPDATE review_task ... WHERE id IN (SELECT ... ORDER BY the queue
                           order LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ...
  the next item            SELECT the inspection with its regions, then its photos
  COMMIT                   durable, as the app's decision is

It renders nothing, checks nothing and computes no error cases, stats or webhooks: what
the app does beyond this is what the ratio measures.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

LEASE_S = 300

LOCK = "SELECT id, inspection_id, attempt, is_audit FROM review_task WHERE id = %s FOR UPDATE"
INSERT_DECISION = """
INSERT INTO decision (review_task_id, inspection_id, user_id, verdict, note, tags, attempt,
                      is_audit, created_at)
VALUES (%s, %s, %s, %s, '', '{}', %s, %s, now()) RETURNING id"""
INSERT_ANSWERS = """
INSERT INTO decision_region (decision_id, region_id, photo_id, x1, y1, x2, y2, defect_type,
                             severity, outcome)
SELECT %s, id, photo_id, x1, y1, x2, y2, defect_type, severity, 'confirmed'
FROM region WHERE inspection_id = %s"""
CLOSE = """
UPDATE review_task SET decided_at = now(), decision_id = %s, lease_owner_id = NULL,
                       lease_expires_at = NULL
WHERE id = %s"""
CLAIM = """
UPDATE review_task SET lease_owner_id = %s, lease_expires_at = now() + %s * interval '1 second',
                       attempt = attempt + 1, claimed_at = now()
WHERE id IN (
    SELECT id FROM review_task
    WHERE decided_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY priority_key, severity_rank DESC, created_at
    LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, inspection_id"""
ITEM = """
SELECT i.external_id, i.station, i.created_at, r.*
FROM inspection i LEFT JOIN region r ON r.inspection_id = i.id
WHERE i.id = %s ORDER BY r.id"""
PHOTOS = "SELECT * FROM photo WHERE inspection_id = %s ORDER BY position"


def conninfo(database_url: str) -> str:
    """A libpq connection string from the app's SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


async def user_ids(database_url: str, names: list[str]) -> list[int]:
    async with await psycopg.AsyncConnection.connect(conninfo(database_url)) as conn:
        rows = await (
            await conn.execute('SELECT id, username FROM "user" WHERE username = ANY(%s)', [names])
        ).fetchall()
    ids = {name: id_ for id_, name in rows}
    return [ids[name] for name in names]


class BareInspector:
    """One inspector as a bare client: a connection and the task on screen."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], user_id: int, name: str) -> None:
        self.conn = conn
        self.user_id = user_id
        self.rng = random.Random(name)
        self.task: tuple[int, Any] | None = None
        self.decided = 0

    async def start(self) -> None:
        async with self.conn.transaction():
            self.task = await self._claim()

    async def _claim(self) -> tuple[int, Any] | None:
        row = await (await self.conn.execute(CLAIM, (self.user_id, LEASE_S))).fetchone()
        if row is None:
            return None
        await (await self.conn.execute(ITEM, (row[1],))).fetchall()
        await (await self.conn.execute(PHOTOS, (row[1],))).fetchall()
        return row[0], row[1]

    async def decide_and_next(self) -> None:
        assert self.task is not None
        task_id, _ = self.task
        verdict = ("pass", "reject")[self.decided % 2]
        async with self.conn.transaction():
            locked = await (await self.conn.execute(LOCK, (task_id,))).fetchone()
            assert locked is not None
            _, inspection_id, attempt, is_audit = locked
            cursor = await self.conn.execute(
                INSERT_DECISION, (task_id, inspection_id, self.user_id, verdict, attempt, is_audit)
            )
            decision_id = (await cursor.fetchone())[0]  # type: ignore[index]
            await self.conn.execute(INSERT_ANSWERS, (decision_id, inspection_id))
            await self.conn.execute(CLOSE, (decision_id, task_id))
            self.task = await self._claim()
        self.decided += 1

    async def decide_until(self, stop_at: float, warmup: int, think: float) -> list[float]:
        """Decide until time is up: ms of each decision after the first `warmup`."""
        samples: list[float] = []
        n = 0
        while self.task is not None and time.monotonic() < stop_at:
            if think:
                await asyncio.sleep(think * self.rng.uniform(0.5, 1.5))
            started = time.perf_counter()
            await self.decide_and_next()
            n += 1
            if n > warmup:
                samples.append((time.perf_counter() - started) * 1000)
        return samples


async def run_bare(
    database_url: str, names: list[str], seconds: float, warmup: int, think: float
) -> list[list[float]]:
    """Each named inspector decides over a connection of its own for `seconds`."""
    ids = await user_ids(database_url, names)
    info = conninfo(database_url)
    conns = [await psycopg.AsyncConnection.connect(info) for _ in names]
    try:
        team = [BareInspector(c, u, n) for c, u, n in zip(conns, ids, names, strict=True)]
        for inspector in team:
            await inspector.start()
        stop_at = time.monotonic() + seconds
        return list(await asyncio.gather(*(i.decide_until(stop_at, warmup, think) for i in team)))
    finally:
        for conn in conns:
            await conn.close()
