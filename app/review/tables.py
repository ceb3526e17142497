"""The review queue (a Postgres priority queue leased with SKIP LOCKED) and human decisions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.inspections.tables import Inspection


class ReviewTask(Base):
    __tablename__ = "review_task"
    __table_args__ = (
        # The claim query scans open tasks in priority order; decided ones drop out.
        Index(
            "review_task_open_idx",
            "confidence",
            text("severity_rank DESC"),
            "created_at",
            postgresql_where=text("decided_at IS NULL"),
        ),
        # "Does this inspector already hold a task?" on every page load.
        Index(
            "review_task_lease_owner_idx",
            "lease_owner_id",
            postgresql_where=text("decided_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspection.id", ondelete="CASCADE"), unique=True
    )
    reason: Mapped[str] = mapped_column(String(50))  # uncertain, audit, inference_unavailable
    is_audit: Mapped[bool] = mapped_column(default=False)
    # Lower confidence first; an item with no model result (failure) has confidence 0.
    confidence: Mapped[float] = mapped_column(Float)
    severity_rank: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    inspection: Mapped[Inspection] = relationship()


class Decision(Base):
    """A human decision: ground truth. Rows are never updated; a re-review adds a new one."""

    __tablename__ = "decision"
    __table_args__ = (CheckConstraint("verdict IN ('pass', 'reject')", name="verdict"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    review_task_id: Mapped[int] = mapped_column(ForeignKey("review_task.id"), index=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inspection.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    verdict: Mapped[str] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(Text, default="")
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
