"""The outbox: messages for the workers, committed in the same transaction as their cause.

Inspections (an upload, a retry, the sweep) and the learning loop (a queued training run
or classifier evaluation) write rows here; the relay (workers/relay.py) delivers them to
Celery. The table has a module of its own because no one area owns it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

# A payload key the relay sends as the message's header, not as an argument of the task:
# the id of the request that caused the message, for the log lines of the work it starts.
REQUEST_ID_KEY = "request_id"
REQUEST_ID_HEADER = "loupe_request_id"


class Outbox(Base):
    """Messages committed with the rows that caused them; a relay delivers them to Celery."""

    __tablename__ = "outbox"
    __table_args__ = (Index("outbox_pending_idx", "id", postgresql_where=text("sent_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # A name from app.task_names.
    task: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
