"""The review band as the ML team set it: proposals, and the bands applied in turn.

A row is a band (high:low). `loupe thresholds recommend --propose` writes one as
`proposed` with its guarantee in words; an ml user applies it on /ml/models (or dismisses
it). The band in force is the newest `applied` row, or the settings' band
(LOUPE_THRESHOLD_HIGH/_LOW) while there is none. A rollback applies the band before it
again, as a new row: the history only grows, and says who did what, when.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

STATES = ("proposed", "applied", "dismissed")
SOURCES = ("recommend", "manual", "rollback")


class RoutingBand(Base):
    __tablename__ = "routing_band"
    __table_args__ = (
        CheckConstraint(f"state IN {STATES}", name="state"),
        CheckConstraint(f"source IN {SOURCES}", name="source"),
        CheckConstraint("0 <= low AND low < high AND high <= 1", name="band"),
        # The band in force: the newest applied row.
        Index("routing_band_applied_idx", "decided_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    # Why: the recommendation's guarantee in words, or what the person wrote.
    note: Mapped[str] = mapped_column(Text, default="")
    proposed_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))  # NULL: the CLI
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
