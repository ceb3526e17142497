"""Database engine, sessions and the declarative base with explicit constraint names."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, ClassVar

from fastapi import Depends, Path
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import MetaData, Table, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.config import get_settings

NAMING_CONVENTION = {
    "ix": "%(column_0_label)s_idx",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # Every class here is mapped to a declared Table, never to a join or a subquery as
        # DeclarativeBase allows, so Core insert/update take `Model.__table__` as it is.
        __table__: ClassVar[Table]


def utcnow() -> datetime:
    return datetime.now(UTC)


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    return create_engine(settings.database_url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for workers and scripts: commit on success, roll back on error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def get_session() -> AsyncIterator[Session]:
    """The request's session. Async, so that FastAPI does not send its opening and its
    closing to the thread pool (two hops on every request): making a session touches no
    connection, and closing one after its commit only drops the object. A session still in
    a transaction rolls back over the network when closed, so that close runs in the pool."""
    session = session_factory()()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]
# Row ids are BIGINT identities from 1: a path id outside that range is bad input (400 or
# 422), not a query that PostgreSQL refuses with an error (500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def import_all_tables() -> None:
    """Import every area's tables so that Base.metadata is complete (Alembic, tests)."""
    import app.auth.tables  # noqa: F401
    import app.exports.tables  # noqa: F401
    import app.feedback.tables  # noqa: F401
    import app.inspections.tables  # noqa: F401
    import app.instructions.tables  # noqa: F401
    import app.learning.tables  # noqa: F401
    import app.outbox  # noqa: F401
    import app.registry.tables  # noqa: F401
    import app.review.tables  # noqa: F401
    import app.thresholds.tables  # noqa: F401
    import app.webhooks.tables  # noqa: F401


# Tables name other areas' tables by string (ForeignKey("training_run.id")), so no tables
# module imports another's. Queries and flushes do not mind a name whose table is not
# imported yet, but the complete metadata does (sorted_tables, Alembic's comparison), and
# so does a relationship to another area's class. The ORM configures its mappers on first
# use (a query, a flush, a new object), whoever makes it: web, worker, command line or
# test; every area's tables are imported then.
@event.listens_for(Base.registry, "before_configured")
def _import_all_tables_before_configure(_registry: object) -> None:
    import_all_tables()
