"""Error cases (where a human disagreed with the model) and the stored weekly reports.

An error case is derived from one decision (app.feedback.capture) and is never edited.
Whether it counts is read from the queue: only the decision in effect for its item
(`review_task.decision_id`) counts, so an undone or superseded decision drops out of the
numbers without anything being deleted. Enough of the decision is copied onto the row
(when, versions, tags, audit) that the dashboard groups error cases without joins.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    String,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

KINDS = ("false_positive", "false_negative", "classification_error")
SCOPES = ("region", "item")


class ErrorCase(Base):
    __tablename__ = "error_case"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        CheckConstraint(f"scope IN {SCOPES}", name="scope"),
        CheckConstraint("field IS NULL OR field IN ('type', 'severity')", name="field"),
        # The weekly report reads a week of cases at a time.
        Index("error_case_decided_at_idx", "decided_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decision.id"), index=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inspection.id"))
    kind: Mapped[str] = mapped_column(String(30))
    scope: Mapped[str] = mapped_column(String(10))
    # The model's region it is about; NULL for a box the model missed and for item cases.
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photo.id"))
    # The box to show: the model's, or the human's for a defect the model missed.
    x1: Mapped[float | None] = mapped_column(Float)
    y1: Mapped[float | None] = mapped_column(Float)
    x2: Mapped[float | None] = mapped_column(Float)
    y2: Mapped[float | None] = mapped_column(Float)
    # What the model and the human called the region ("normal": not a defect; the model's
    # label is NULL for a missed defect). For item cases, the verdicts.
    model_label: Mapped[str | None] = mapped_column(String(50))
    human_label: Mapped[str | None] = mapped_column(String(50))
    # For a classification error, which field differs and its values (model → human).
    field: Mapped[str | None] = mapped_column(String(10))
    from_value: Mapped[str | None] = mapped_column(String(50))
    to_value: Mapped[str | None] = mapped_column(String(50))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    is_audit: Mapped[bool] = mapped_column(default=False)
    detector_version: Mapped[str | None] = mapped_column(String(200))
    classifier_version: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(50))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WeeklyReport(Base):
    """A closed week's report as it was computed then: history that later edits (a lead's
    re-review, an undo) do not rewrite. Written by beat (app.dashboard.snapshots)."""

    __tablename__ = "weekly_report"

    week: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO week, "2026-W47"
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
