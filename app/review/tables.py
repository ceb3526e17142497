"""The review queue (a Postgres priority queue leased with SKIP LOCKED) and human decisions.

Decisions are ground truth and never change once written. What changes around them is
queue state: the task's lease, whether it is open, and which decision is in effect
(`review_task.decision_id`). An undo is a row of its own (`decision_undo`), and a
re-review adds a new decision that names the one it supersedes, so the history of every
item can be read back in full.
"""

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
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.inspections.tables import Inspection

VERDICTS = ("pass", "reject")
OUTCOMES = ("confirmed", "changed", "not_defect", "added")


class ReviewTask(Base):
    __tablename__ = "review_task"
    __table_args__ = (
        # The claim query reads open tasks in exactly this order and stops at the first
        # rows nobody has locked: one index scan, however long the queue (app.review.priority).
        Index(
            "review_task_open_idx",
            "priority_key",
            text("severity_rank DESC"),
            "created_at",
            postgresql_where=text("decided_at IS NULL"),
        ),
        # "Which tasks does this inspector hold?" on every page load and heartbeat.
        Index(
            "review_task_lease_owner_idx",
            "lease_owner_id",
            postgresql_where=text("decided_at IS NULL"),
        ),
        # SLA breaches and "oldest item" on the lead's page.
        Index("review_task_due_idx", "due_at", postgresql_where=text("decided_at IS NULL")),
        # "Is this decision the one in effect?": every feedback number asks it (app.feedback).
        Index("review_task_decision_id_key", "decision_id", unique=True),
        # The weekly report's backlog at a week's end: tasks decided after it (with the
        # open-task index, a BitmapOr instead of a scan of every task ever made).
        Index("review_task_decided_at_idx", "decided_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspection.id", ondelete="CASCADE"), unique=True
    )
    reason: Mapped[str] = mapped_column(String(50))  # uncertain, audit, inference_unavailable
    is_audit: Mapped[bool] = mapped_column(default=False)
    # The model's item confidence; an item with no model result (failure) has 0.
    confidence: Mapped[float] = mapped_column(Float)
    severity_rank: Mapped[int] = mapped_column(Integer, default=0)
    # Queue order with aging built in (app.review.priority.priority_key); lower goes first.
    priority_key: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the current (or last) lease began: an inspector's held tasks are shown in this
    # order, so the prefetched next item never jumps ahead of the one on screen.
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The decision in effect: the latest one that was not undone. It stays set while a lead
    # has sent the item back (decided_at is then NULL) until the new decision replaces it.
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decision.id", use_alter=True))

    inspection: Mapped[Inspection] = relationship()


class Decision(Base):
    """A human decision: ground truth. Rows are never updated; a re-review adds a new one."""

    __tablename__ = "decision"
    __table_args__ = (
        CheckConstraint("verdict IN ('pass', 'reject')", name="verdict"),
        CheckConstraint(
            "model_verdict IS NULL OR model_verdict IN ('pass', 'reject')", name="model_verdict"
        ),
        # An inspector's own numbers (today's count, pace) read their recent decisions.
        Index("decision_user_id_created_at_idx", "user_id", "created_at"),
        Index("decision_created_at_idx", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    review_task_id: Mapped[int] = mapped_column(ForeignKey("review_task.id"), index=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inspection.id"), index=True)
    # NULL for a label an import brought (app.imports; the inspection's `source` says
    # from where): no person made it, so it is nobody's work and no judgement of a model.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    verdict: Mapped[str] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    attempt: Mapped[int] = mapped_column(Integer)
    # The decision this one replaces after a lead sent the item back; NULL for the first.
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("decision.id"))
    # What the model proposed for the item (app.review.proposal), so that agreement can be
    # measured per decision even after thresholds or the decision table change.
    model_verdict: Mapped[str | None] = mapped_column(String(10))
    is_audit: Mapped[bool] = mapped_column(default=False)
    # The models the human judged, copied from the inspection: feedback is per version.
    detector_version: Mapped[str | None] = mapped_column(String(200))
    classifier_version: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    regions: Mapped[list[DecisionRegion]] = relationship(
        order_by="DecisionRegion.id", cascade="all"
    )


class DecisionRegion(Base):
    """The human's answer for one region: a model region kept, changed or rejected, or a
    box the human drew for a defect the model missed."""

    __tablename__ = "decision_region"
    __table_args__ = (
        CheckConstraint(f"outcome IN {OUTCOMES}", name="outcome"),
        # A drawn box has no model region; every other outcome answers one.
        CheckConstraint("(outcome = 'added') = (region_id IS NULL)", name="region_for_outcome"),
        CheckConstraint("x1 < x2 AND y1 < y2", name="box"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decision.id"), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), index=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photo.id"))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    # The human's type ("normal" when it is not a defect) and severity (NULL then).
    defect_type: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))


class DecisionUndo(Base):
    """The author took a decision back within the undo window.

    The decision row stays as it was (it is still what the person clicked, and when); this
    row says it is void. The task reopens for the same inspector, and the item's verdict
    goes back to the decision in effect before it.
    """

    __tablename__ = "decision_undo"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decision.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
