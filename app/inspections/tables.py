"""An inspection is one garment; it has one or more photos, and each region belongs to one photo."""

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
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow

STATUSES = ("queued", "inferring", "routed")
ROUTES = ("auto_pass", "auto_reject", "review")
ARMS = ("champion", "challenger")


class Inspection(Base):
    __tablename__ = "inspection"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint(f"route IS NULL OR route IN {ROUTES}", name="route"),
        CheckConstraint("verdict IS NULL OR verdict IN ('pass', 'reject')", name="verdict"),
        CheckConstraint(f"arm IS NULL OR arm IN {ARMS}", name="arm"),
        # Idempotency: a station never creates two inspections for one key or external id.
        Index(
            "inspection_station_external_id_key",
            "station",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
        Index(
            "inspection_unrouted_idx",
            "status_changed_at",
            postgresql_where=text("status <> 'routed'"),
        ),
        # The routing mix of a week (app.dashboard.report).
        Index("inspection_routed_at_idx", "routed_at"),
        # Pages by arrival: /inspections (newest first) and the API's listings by status.
        Index("inspection_created_at_idx", "created_at", "id"),
        Index(
            "inspection_station_idempotency_key_key",
            "station",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    station: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    route: Mapped[str | None] = mapped_column(String(20))
    route_reason: Mapped[str | None] = mapped_column(String(50))
    # The item's verdict: from the automatic route, or from the latest human decision.
    verdict: Mapped[str | None] = mapped_column(String(10))
    confidence: Mapped[float | None] = mapped_column(Float)
    is_audit: Mapped[bool] = mapped_column(default=False)
    detector_version: Mapped[str | None] = mapped_column(String(200))
    classifier_version: Mapped[str | None] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(50))
    # Which arm of an experiment decided (champion unless a challenger takes a share).
    arm: Mapped[str | None] = mapped_column(String(20))
    inference_error: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The review band the item was routed with (app.thresholds.bands: an ml user may apply
    # another at any time): review weighs its regions by the band that sent it to people.
    band_high: Mapped[float | None] = mapped_column(Float)
    band_low: Mapped[float | None] = mapped_column(Float)
    # "import:<name>" for photos brought in by `loupe import` (app.imports), NULL for a
    # station's upload: imported history is told apart from the floor's own work.
    source: Mapped[str | None] = mapped_column(String(100))
    # The labels an import brought for an item it sent to the models (--as inspect), kept
    # to compare the models with; the shape is app.imports.writer.reference_labels.
    reference_labels: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    routed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the status last moved, or, while a failed attempt waits for its retry, when the
    # retry is due: the sweep re-dispatches items that have not moved on by then.
    status_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    photos: Mapped[list[Photo]] = relationship(
        back_populates="inspection", order_by="Photo.position", cascade="all, delete-orphan"
    )
    regions: Mapped[list[Region]] = relationship(
        back_populates="inspection", order_by="Region.id", cascade="all, delete-orphan"
    )


class Photo(Base):
    __tablename__ = "photo"
    __table_args__ = (
        UniqueConstraint("inspection_id", "position"),
        # "Is this photo already here?": an import's idempotency (app.imports.writer).
        Index("photo_content_hash_idx", "content_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspection.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    view: Mapped[str | None] = mapped_column(String(50))  # front, back, detail, ...
    object_key: Mapped[str] = mapped_column(String(300))
    content_hash: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    inspection: Mapped[Inspection] = relationship(back_populates="photos")


class Region(Base):
    __tablename__ = "region"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("inspection.id", ondelete="CASCADE"), index=True
    )
    photo_id: Mapped[int] = mapped_column(ForeignKey("photo.id", ondelete="CASCADE"), index=True)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    detector_score: Mapped[float] = mapped_column(Float)
    defect_type: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    # Distributions over types and severities, exception checks: the reviewer's evidence.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    inspection: Mapped[Inspection] = relationship(back_populates="regions")
    photo: Mapped[Photo] = relationship()
