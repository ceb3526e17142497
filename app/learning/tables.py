"""Trigger checks, dataset snapshots, the frozen test set and training runs.

A snapshot and a test-set membership are facts that never change: the database refuses
updates of a snapshot (as it does for model versions), and a test item is only ever added.
A training run is the one row that moves, through queued -> running -> succeeded | failed,
or straight to refused; at most one is queued or running, which a partial unique index
holds even against writers that skip the service.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "refused")
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("succeeded", "failed", "refused")
TRIGGERS = ("beat", "cli", "page")
# What a run produces: a fine-tuned detector, or a classifier candidate (weights and
# prompts) that is evaluated, not trained (app.learning.classifier).
RUN_KINDS = ("detector", "classifier")
SPLITS = ("train", "val", "test")


class TriggerCheck(Base):
    """One look at the retraining trigger, with the numbers it saw, fired or not."""

    __tablename__ = "trigger_check"
    __table_args__ = (
        Index("trigger_check_checked_at_idx", "checked_at"),
        CheckConstraint(f"kind IN {RUN_KINDS}", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Whose check: the detector's (the columns below) or the classifier's (`measures`
    # holds what it saw beside them); recorded apart, each with its own reasons.
    kind: Mapped[str] = mapped_column(String(20), default="detector", server_default="detector")
    measures: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new_verified_samples: Mapped[int] = mapped_column(Integer)
    reviewed: Mapped[int] = mapped_column(Integer)
    disagreements: Mapped[int] = mapped_column(Integer)
    window_days: Mapped[float] = mapped_column(Float)
    class_precision: Mapped[dict[str, float]] = mapped_column(JSONB, default=dict)
    class_support: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)
    fired: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)  # in English
    reason_codes: Mapped[list[dict[str, Any] | None]] = mapped_column(JSONB, default=list)
    # What a check that fired did: started a run, or why not (a run in progress, the
    # cooldown); with its code, as for the reasons (app.policy.problems).
    note: Mapped[str] = mapped_column(Text, default="")
    note_code: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_run.id"))


class DatasetSnapshot(Base):
    """The verified samples a run trained on: a content-addressed manifest in the object store.

    `max_decision_id` is the newest decision the manifest holds, so "new verified samples
    since this snapshot" is a comparison of identities, not of clocks.
    """

    __tablename__ = "dataset_snapshot"
    __table_args__ = (UniqueConstraint("manifest_sha256"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    manifest_key: Mapped[str] = mapped_column(String(300))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    samples: Mapped[int] = mapped_column(Integer)  # photos with their human boxes
    inspections: Mapped[int] = mapped_column(Integer)
    split_counts: Mapped[dict[str, int]] = mapped_column(JSONB)  # {"train": n, "val", "test"}
    class_counts: Mapped[dict[str, dict[str, int]]] = mapped_column(JSONB)  # split -> type -> boxes
    val_share: Mapped[float] = mapped_column(Float)
    max_decision_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TestSetItem(Base):
    """An inspection frozen into the test set: evaluated on, never trained on, never removed."""

    __tablename__ = "test_set_item"
    __test__ = False  # not a pytest class, whatever its name

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    inspection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inspection.id"), unique=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # NULL when the command line froze it, where nobody is logged in.
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class TrainedItem(Base):
    """An inspection that a run was queued to train on, with the first snapshot it came
    from: the train split of a detector's dataset snapshot, or an instruction snapshot a
    classifier was tuned on (exactly one of the two).

    The manifests say the same, but freezing the test set must ask "was this ever trained
    on?" of every candidate item, which one indexed row answers.
    """

    __tablename__ = "trained_item"
    __table_args__ = (
        CheckConstraint(
            "(snapshot_id IS NULL) <> (instruction_snapshot_id IS NULL)", name="one_snapshot"
        ),
    )

    inspection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inspection.id"), primary_key=True)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_snapshot.id"), index=True)
    instruction_snapshot_id: Mapped[str | None] = mapped_column(
        ForeignKey("instruction_snapshot.id")
    )


class TrainingRun(Base):
    __tablename__ = "training_run"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES}", name="status"),
        CheckConstraint(f"trigger IN {TRIGGERS}", name="trigger"),
        CheckConstraint(f"kind IN {RUN_KINDS}", name="kind"),
        # One run at a time: the lock in app.learning.runs.start_run answers politely, this
        # index makes a second active run impossible.
        Index(
            "training_run_one_active_key",
            text("(true)"),
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("training_run_created_at_idx", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    kind: Mapped[str] = mapped_column(String(20), default="detector", server_default="detector")
    # A classifier run's candidate: {"uri": weights, "prompt_version": name}.
    candidate: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    trigger: Mapped[str] = mapped_column(String(10))
    triggered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_snapshot.id"))
    # Live progress, written by the worker at most about once a second.
    epoch: Mapped[float | None] = mapped_column(Float)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    loss: Mapped[float | None] = mapped_column(Float)
    eta_s: Mapped[float | None] = mapped_column(Float)
    phase: Mapped[str] = mapped_column(String(30), default="queued")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    refusal_reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)  # in English
    # Beside each reason, {"key", "params"} to say it in the reader's language (None: it
    # can only be shown as written): app.policy.problems.
    refusal_codes: Mapped[list[dict[str, Any] | None]] = mapped_column(JSONB, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # {"passed": bool, "reasons"}
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_version.id", use_alter=True)
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES
