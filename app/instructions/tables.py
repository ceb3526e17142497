"""Instruction dataset snapshots: one row per distinct manifest in the object store; and
the exclusions the ML team made from them.

The id is the manifest's sha256, so a second build of the same data finds its row
instead of adding one, and the database refuses updates (a snapshot is what a model
will have been trained on; its counts must not move under it).

An exclusion is who took which examples out of a snapshot and why, and the snapshot that
made; every later build leaves those examples out too. Its rows are never updated either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class InstructionSnapshot(Base):
    __tablename__ = "instruction_snapshot"
    __table_args__ = (Index("instruction_snapshot_created_at_idx", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the manifest
    manifest_key: Mapped[str] = mapped_column(String(300))
    template_version: Mapped[str] = mapped_column(String(50))
    prompt_version: Mapped[str] = mapped_column(String(50))
    kinds: Mapped[list[str]] = mapped_column(JSONB)  # ["A", "B", "C", "D"]
    languages: Mapped[list[str]] = mapped_column(JSONB)
    crops: Mapped[int] = mapped_column(Integer)
    examples: Mapped[int] = mapped_column(Integer)
    samples: Mapped[int] = mapped_column(Integer)  # examples counted with their crops' repeats
    # Examples per kind, defect type and language (app.instructions.manifest.manifest_counts).
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    balance: Mapped[dict[str, Any]] = mapped_column(JSONB)  # what oversampling did
    # The newest decision it holds: "new verified answers since" compares identities.
    max_decision_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InstructionExclusion(Base):
    __tablename__ = "instruction_exclusion"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The snapshot the examples were taken out of, and the snapshot that left.
    source_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("instruction_snapshot.id"), index=True
    )
    result_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("instruction_snapshot.id"), index=True
    )
    example_ids: Mapped[list[str]] = mapped_column(JSONB)  # app.instructions.examples.Example.id
    reason: Mapped[str] = mapped_column(String(500))
    # Who excluded them (NULL: no one was logged in, as for app.auth.tables.AuditEvent).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
