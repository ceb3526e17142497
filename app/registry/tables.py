"""Model versions, the aliases that point at them, and A/B experiments between them.

As in MLflow's registry: a model version is an immutable row (its URI, content hash and
evaluation metrics never change; the database refuses updates), and "champion" and
"challenger" are aliases that move between versions. The `version` string is the one
recorded with every result (inspection.detector_version / classifier_version).
"""

from __future__ import annotations

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
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow

MODEL_KINDS = ("detector", "classifier")
ALIASES = ("champion", "challenger")
EXPERIMENT_STATUSES = ("running", "stopped")
EXPERIMENT_RESULTS = ("promoted", "rolled_back")


class ModelVersion(Base):
    __tablename__ = "model_version"
    __table_args__ = (
        UniqueConstraint("kind", "version"),
        CheckConstraint(f"kind IN {MODEL_KINDS}", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    version: Mapped[str] = mapped_column(String(200))
    uri: Mapped[str] = mapped_column(Text)
    # sha256 of the model's manifest (models/model_store.py): pins the exact files.
    content_hash: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Where a trained version came from (NULL for versions registered from outside the
    # loop), its evaluation gate ({"passed": bool, "reasons": [...]}; NULL when never gated)
    # and, for a classifier, the prompts it was evaluated with.
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_run.id"))
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_snapshot.id"))
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    prompt_version: Mapped[str | None] = mapped_column(String(50))
    # A tuned classifier: its base weights are `uri`, its LoRA adapter (models/tuning) is
    # here, and `content_hash` covers both. NULL for every other version.
    adapter_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def gate_failed(self) -> bool:
        """A version whose gate failed must never serve (nor be aliased)."""
        return (self.gate or {}).get("passed") is False


class ModelAlias(Base):
    """champion / challenger for each kind of model; moving one is an update of this row."""

    __tablename__ = "model_alias"
    __table_args__ = (
        CheckConstraint(f"alias IN {ALIASES}", name="alias"),
        CheckConstraint(f"kind IN {MODEL_KINDS}", name="kind"),
    )

    alias: Mapped[str] = mapped_column(String(20), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_version.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    model_version: Mapped[ModelVersion] = relationship()


class Experiment(Base):
    """A challenger served beside the champion for a share of the inspections.

    The arm of an inspection is drawn from its id with the experiment's name as salt
    (models/arms.py), and each result records its arm and versions (inspection.arm).
    A null detector is an arm that runs classifier-only (cold start).
    """

    __tablename__ = "experiment"
    __table_args__ = (
        UniqueConstraint("name"),
        CheckConstraint(f"status IN {EXPERIMENT_STATUSES}", name="status"),
        CheckConstraint("challenger_share > 0 AND challenger_share < 1", name="challenger_share"),
        CheckConstraint(f"result IS NULL OR result IN {EXPERIMENT_RESULTS}", name="result"),
        # Serve runs one challenger at a time, so at most one experiment runs.
        Index(
            "experiment_one_running_key",
            "status",
            unique=True,
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="running")
    challenger_share: Mapped[float] = mapped_column(Float)
    champion_detector_id: Mapped[int | None] = mapped_column(ForeignKey("model_version.id"))
    champion_classifier_id: Mapped[int] = mapped_column(ForeignKey("model_version.id"))
    challenger_detector_id: Mapped[int | None] = mapped_column(ForeignKey("model_version.id"))
    challenger_classifier_id: Mapped[int] = mapped_column(ForeignKey("model_version.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # How it ended: promoted, rolled_back (by the analysis or by a person), or NULL while it
    # runs. The analysis is the last one beat made (app.registry.experiments).
    result: Mapped[str | None] = mapped_column(String(20))
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
