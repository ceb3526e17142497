"""Recording what the models said: regions, the route, and the review task if one is needed.

Called by the run_inference task. Every write locks the inspection row and checks its
status first, so a redelivered or duplicated task never routes an item twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.config import Settings
from app.db import utcnow
from app.inspections.service import RUN_INFERENCE
from app.inspections.tables import Inspection, Outbox, Region
from app.policy.routing import DecisionTable, RegionScore, Route, Thresholds, route
from app.policy.sampling import audit_draw
from app.review.service import create_review_task
from models.contracts import InferenceResult


def policy_from_settings(settings: Settings) -> tuple[Thresholds, DecisionTable]:
    thresholds = Thresholds(
        detector=settings.detector_threshold,
        high=settings.threshold_high,
        low=settings.threshold_low,
        audit_rate=settings.audit_rate,
    )
    return thresholds, DecisionTable.from_json(settings.decision_overrides)


def _lock(session: Session, inspection_id: uuid.UUID) -> Inspection | None:
    return session.scalar(
        select(Inspection)
        .where(Inspection.id == inspection_id)
        .options(selectinload(Inspection.photos))
        .with_for_update(of=Inspection)
    )


def start_inference(*, session: Session, inspection_id: uuid.UUID) -> list[str] | None:
    """Mark the item as inferring and return its photos' object keys; None if already routed."""
    inspection = _lock(session, inspection_id)
    if inspection is None or inspection.status == "routed":
        session.rollback()
        return None
    inspection.status = "inferring"
    inspection.status_changed_at = utcnow()
    keys = [p.object_key for p in inspection.photos]
    session.commit()
    return keys


def _apply_route(
    session: Session, inspection: Inspection, decided: Route, settings: Settings
) -> None:
    now = utcnow()
    inspection.status = "routed"
    inspection.status_changed_at = now
    inspection.routed_at = now
    inspection.route = decided.kind
    inspection.route_reason = decided.reason
    inspection.confidence = decided.confidence
    inspection.verdict = decided.verdict
    inspection.is_audit = decided.is_audit
    if decided.kind == "review":
        create_review_task(
            session=session,
            inspection_id=inspection.id,
            reason="audit" if decided.is_audit else decided.reason,
            confidence=decided.confidence,
            severity=decided.severity,
            is_audit=decided.is_audit,
            sla_seconds=settings.review_sla_seconds,
            now=now,
        )


def record_result(
    *, session: Session, inspection_id: uuid.UUID, result: InferenceResult, settings: Settings
) -> Route | None:
    """Store the regions and route the item; None if it was routed already."""
    inspection = _lock(session, inspection_id)
    if inspection is None or inspection.status == "routed":
        session.rollback()
        return None
    thresholds, table = policy_from_settings(settings)
    photo_ids = [p.id for p in inspection.photos]
    if any(not 0 <= r.photo_index < len(photo_ids) for r in result.regions):
        session.rollback()
        raise ValueError("the inference result names a photo this inspection does not have")
    scores = []
    for r in result.regions:
        c = r.classification
        score = RegionScore(r.detector_score, c.type_probability, c.defect_type, c.severity)
        scores.append(score)
        session.add(
            Region(
                inspection_id=inspection.id,
                photo_id=photo_ids[r.photo_index],
                x1=r.box.x1,
                y1=r.box.y1,
                x2=r.box.x2,
                y2=r.box.y2,
                detector_score=r.detector_score,
                defect_type=c.defect_type,
                severity=c.severity,
                confidence=score.confidence,
                reason=c.reason,
                evidence={
                    "type_distribution": c.type_distribution,
                    "severity_distribution": c.severity_distribution,
                    "type_probability": c.type_probability,
                    "severity_probability": c.severity_probability,
                },
            )
        )
    decided = route(scores, thresholds, table, audit_draw(str(inspection.id)))
    inspection.detector_version = result.detector_version
    inspection.classifier_version = result.classifier_version
    inspection.prompt_version = result.prompt_version
    inspection.timings = result.timings
    _apply_route(session, inspection, decided, settings)
    session.commit()
    return decided


def record_failure(
    *, session: Session, inspection_id: uuid.UUID, error: str, settings: Settings
) -> Route | None:
    """Inference gave up: the item goes to human review, never to an automatic pass."""
    inspection = _lock(session, inspection_id)
    if inspection is None or inspection.status == "routed":
        session.rollback()
        return None
    thresholds, table = policy_from_settings(settings)
    decided = route(None, thresholds, table, audit_draw(str(inspection.id)))
    inspection.inference_error = error[:2000]
    _apply_route(session, inspection, decided, settings)
    session.commit()
    return decided


def redispatch_stuck(
    *, session: Session, older_than: timedelta, now: datetime | None = None
) -> int:
    """Queue inference again for items stuck before routing (e.g. a broker lost its queue)."""
    cutoff = (now or utcnow()) - older_than
    stuck = session.scalars(
        select(Inspection)
        .where(Inspection.status != "routed", Inspection.status_changed_at < cutoff)
        .with_for_update(skip_locked=True)
        .limit(500)
    ).all()
    for inspection in stuck:
        inspection.status_changed_at = utcnow()
        session.add(Outbox(task=RUN_INFERENCE, payload={"inspection_id": str(inspection.id)}))
    session.commit()
    return len(stuck)
