"""Export jobs: an archive of a snapshot in one format, built by a worker for /ml/exports.

A job moves queued -> running -> succeeded | failed. It names its data exactly: a
detector dataset snapshot (NULL while a job asked for "the verified data now" waits for
its worker to take that snapshot) or an instruction snapshot, never both. The finished
.zip lives in the object store under `archive_key`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

JOB_STATUSES = ("queued", "running", "succeeded", "failed")
ACTIVE_STATUSES = ("queued", "running")
# What a running job is doing; the page shows it beside the progress bar.
PHASES = ("snapshot", "photos", "archive", "upload")
JOB_FORMATS = ("coco", "yolo", "labelstudio", "instructions")


class ExportJob(Base):
    __tablename__ = "export_job"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES}", name="status"),
        CheckConstraint(f"format IN {JOB_FORMATS}", name="format"),
        CheckConstraint(f"phase IS NULL OR phase IN {PHASES}", name="phase"),
        # Instructions come from an instruction snapshot, boxes from a dataset snapshot.
        CheckConstraint(
            "(format = 'instructions') = (instruction_snapshot_id IS NOT NULL) "
            "AND (instruction_snapshot_id IS NULL OR snapshot_id IS NULL)",
            name="one_source",
        ),
        Index("export_job_created_at_idx", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    format: Mapped[str] = mapped_column(String(20))
    split: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_snapshot.id"))
    instruction_snapshot_id: Mapped[str | None] = mapped_column(
        ForeignKey("instruction_snapshot.id")
    )
    status: Mapped[str] = mapped_column(String(20), default="queued")
    phase: Mapped[str | None] = mapped_column(String(20))
    # Photos (or crops) copied so far, of how many.
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    images: Mapped[int | None] = mapped_column(Integer)
    boxes: Mapped[int | None] = mapped_column(Integer)
    archive_key: Mapped[str | None] = mapped_column(String(300))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    archive_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Moves with every progress report: a running job whose worker died stops moving,
    # and a redelivered message may take it over (app.exports.jobs.claim).
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
