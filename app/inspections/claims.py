"""A worker's claim on the item it is inferring: a PostgreSQL session-level advisory lock.

Why a lock and not a heartbeat column: the lock lives exactly as long as the worker's
database connection, and a worker that dies (kill -9, OOM, a lost machine) loses its
connection, so the claim ends with it at once, with no interval to tune, no migration
and no clock. "Inferring, and nobody holds its claim" therefore means "the worker that
was inferring it is gone", which is what the sweeper needs to know to dispatch the item
again without ever taking one a live worker is still working on.

The claim is taken on a connection of its own, held for the attempt, and let go (or the
connection closed) before that connection goes back to the pool. Under a transaction-mode
connection pooler (PgBouncer) a session lock would not hold: point Loupe at Postgres or at
a session-mode pooler.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from app.db import get_engine

log = logging.getLogger(__name__)


def claim_key(inspection_id: uuid.UUID) -> int:
    """The lock's 64-bit key: the id's first 8 bytes (random in a uuid4, so two items
    practically never share a key; the training slot's key is a hash of its name)."""
    return int.from_bytes(inspection_id.bytes[:8], "big", signed=True)


@contextmanager
def hold(inspection_id: uuid.UUID) -> Iterator[bool]:
    """Claim the item for this attempt: yields True if this worker now holds it, False if a
    live worker (or a sweep, for a moment) already does."""
    key = claim_key(inspection_id)
    with get_engine().connect() as conn:
        held = bool(conn.scalar(select(func.pg_try_advisory_lock(key))))
        conn.commit()  # no transaction stays open during inference; the session lock stays
        try:
            yield held
        finally:
            if held:
                _let_go(conn, key)


def _let_go(conn: Connection, key: int) -> None:
    try:
        conn.scalar(select(func.pg_advisory_unlock(key)))
        conn.commit()
    except Exception as exc:
        # Closing the connection ends the claim with its session; it must never go back to
        # the pool still holding it, or the item would look claimed until the worker exits.
        log.warning("letting go of a claim failed (%s); closing its connection", exc)
        conn.invalidate()


def take_for_sweep(session: Session, inspection_id: uuid.UUID) -> bool:
    """Inside the sweep's transaction: True if no live worker holds the item's claim. The
    sweep then holds it until it commits, so no worker starts the item meanwhile."""
    key = claim_key(inspection_id)
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key))))
