"""The request's session (app.db.get_session) gives its connection back however the request
used it: it opens and closes on the event loop, and only a close that must roll back goes
to the thread pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import get_engine, get_session
from tests.support import reset_caches

pytestmark = pytest.mark.integration


def read_and_leave_open(session: Session) -> None:
    session.execute(text("SELECT 1"))  # the transaction stays open until the close


def read_and_commit(session: Session) -> None:
    session.execute(text("SELECT 1"))
    session.commit()


def touch_nothing(session: Session) -> None:
    pass


async def one_request(work: Callable[[Session], None]) -> bool:
    """Run `work` as a route would, between the dependency's opening and its closing;
    whether the session was still in a transaction when the request ended."""
    sessions = get_session()
    session = await anext(sessions)
    await asyncio.to_thread(work, session)  # the route runs in the thread pool
    open_at_end = session.in_transaction()
    with pytest.raises(StopAsyncIteration):
        await anext(sessions)
    assert not session.in_transaction()
    return open_at_end


@pytest.mark.parametrize(
    ("work", "open_at_end"),
    [(read_and_leave_open, True), (read_and_commit, False), (touch_nothing, False)],
)
def test_the_session_gives_its_connection_back(database_url, work, open_at_end):
    reset_caches()
    try:
        assert asyncio.run(one_request(work)) is open_at_end
        assert get_engine().pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        reset_caches()
