"""The registry's small API: register versions, move aliases, start and stop experiments.

Issue 6 builds promotion and rollback on top of this; the functions do not commit, the
caller decides the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db import utcnow
from app.registry.tables import ALIASES, MODEL_KINDS, Experiment, ModelAlias, ModelVersion


class ImmutableVersion(ValueError):
    """A version string is registered already, with another URI, hash or metrics."""


class ExperimentRunning(RuntimeError):
    """Only one experiment runs at a time; stop the running one first."""


class GateFailed(ValueError):
    """The version failed its evaluation gate, so it may never serve under any alias."""


@dataclass(frozen=True)
class Arm:
    """The model versions of one arm; no detector means classifier-only."""

    classifier: ModelVersion
    detector: ModelVersion | None = None


def register_model_version(
    *,
    session: Session,
    kind: str,
    version: str,
    uri: str,
    content_hash: str,
    metrics: dict[str, Any] | None = None,
    training_run_id: int | None = None,
    snapshot_id: int | None = None,
    gate: dict[str, Any] | None = None,
    prompt_version: str | None = None,
    adapter_uri: str | None = None,
) -> ModelVersion:
    """The row for (kind, version), created once; registering it again is a no-op."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, not {kind!r}")
    metrics = metrics or {}
    lineage = {
        "training_run_id": training_run_id,
        "snapshot_id": snapshot_id,
        "gate": gate,
        "prompt_version": prompt_version,
        "adapter_uri": adapter_uri,
    }
    existing = session.scalar(
        select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.version == version)
    )
    if existing is not None:
        content = {"uri": uri, "content_hash": content_hash, "metrics": metrics, **lineage}
        if any(getattr(existing, name) != value for name, value in content.items()):
            raise ImmutableVersion(f"{kind} {version} is registered with other content")
        return existing
    row = ModelVersion(
        kind=kind,
        version=version,
        uri=uri,
        content_hash=content_hash,
        metrics=metrics,
        **lineage,
    )
    session.add(row)
    session.flush()
    return row


def set_alias(*, session: Session, alias: str, model_version: ModelVersion) -> None:
    """Point `alias` (champion or challenger) of the version's kind at this version.

    A version that failed its evaluation gate is refused: it never serves.
    """
    if alias not in ALIASES:
        raise ValueError(f"alias must be one of {ALIASES}, not {alias!r}")
    if model_version.gate_failed:
        reasons = "; ".join(
            r for r in (model_version.gate or {}).get("reasons", []) if r.startswith("FAIL")
        )
        raise GateFailed(
            f"{model_version.kind} {model_version.version} failed its evaluation gate and "
            f"may not become {alias}" + (f": {reasons}" if reasons else "")
        )
    values = {"model_version_id": model_version.id, "updated_at": utcnow()}
    session.execute(
        insert(ModelAlias)
        .values(alias=alias, kind=model_version.kind, **values)
        .on_conflict_do_update(index_elements=["alias", "kind"], set_=values)
    )


def get_alias(*, session: Session, alias: str, kind: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .join(ModelAlias, ModelAlias.model_version_id == ModelVersion.id)
        .where(ModelAlias.alias == alias, ModelAlias.kind == kind)
    )


def running_experiment(*, session: Session) -> Experiment | None:
    return session.scalar(select(Experiment).where(Experiment.status == "running"))


def start_experiment(
    *, session: Session, name: str, champion: Arm, challenger: Arm, challenger_share: float
) -> Experiment:
    """Record an experiment; the caller deploys the challenger with the same name and share."""
    if running_experiment(session=session) is not None:
        raise ExperimentRunning("an experiment is running already")
    if not 0.0 < challenger_share < 1.0:
        raise ValueError("the challenger's share must be between 0 and 1")
    experiment = Experiment(
        name=name,
        challenger_share=challenger_share,
        champion_detector_id=champion.detector.id if champion.detector else None,
        champion_classifier_id=champion.classifier.id,
        challenger_detector_id=challenger.detector.id if challenger.detector else None,
        challenger_classifier_id=challenger.classifier.id,
    )
    session.add(experiment)
    session.flush()
    return experiment


def stop_experiment(
    *, session: Session, experiment: Experiment, now: datetime | None = None
) -> None:
    experiment.status = "stopped"
    experiment.ended_at = now or utcnow()
