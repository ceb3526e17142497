"""Recording what the models said: regions, the route, and the review task if one is needed.

Called by the run_inference task. Every write locks the inspection row and checks its
status first, so a redelivered or duplicated task never routes an item twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.config import Settings
from app.db import utcnow
from app.inspections import claims
from app.inspections.tables import Inspection, Region
from app.outbox import Outbox
from app.policy.routing import RegionScore, Route
from app.policy.sampling import audit_draw
from app.review.service import create_review_task
from app.task_names import RUN_INFERENCE
from app.webhooks import events as webhook_events
from models.contracts import InferenceResult, RegionResult


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
    inspection.band_high, inspection.band_low = settings.threshold_high, settings.threshold_low
    if decided.verdict is not None:  # the models decided: that is the final outcome
        webhook_events.decided(
            session, inspection_id=inspection.id, decision_id=None, occurred_at=now
        )
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


def region_scores(result: InferenceResult) -> list[RegionScore]:
    """What the policy reads of each region (models' contracts -> the policy's plain values)."""
    return [
        RegionScore(
            r.detector_score,
            r.classification.type_probability,
            r.classification.defect_type,
            r.classification.severity,
            failed=bool(r.classification.error),
        )
        for r in result.regions
    ]


def decide(*, inspection_id: uuid.UUID, result: InferenceResult, settings: Settings) -> Route:
    """The route the policy gives this result; the same every time it is asked."""
    draw = audit_draw(str(inspection_id))
    return settings.routing.route(region_scores(result), draw, cold_start=result.classifier_only)


def regions_to_explain(result: InferenceResult, decided: Route, settings: Settings) -> list[int]:
    """Indices of the regions whose reason an inspector will read, most confident first.

    Reasons are generated only for items that go to review: generation is the expensive
    part, and nobody reads the reason of an automatic decision. Regions below the
    detector threshold or that could not be judged get none.
    """
    if decided.kind != "review":
        return []
    scores = region_scores(result)
    wanted = [
        i
        for i, score in enumerate(scores)
        if not score.failed and score.detector_score >= settings.routing.thresholds.detector
    ]
    wanted.sort(key=lambda i: scores[i].confidence, reverse=True)
    return wanted[: settings.explain_max_regions]


def record_result(
    *,
    session: Session,
    inspection_id: uuid.UUID,
    result: InferenceResult,
    settings: Settings,
    reasons: dict[int, str] | None = None,
    explain_error: str | None = None,
) -> Route | None:
    """Store the regions, their reasons and evidence, and route the item, in one transaction.

    `reasons` maps region indices to generated sentences (a reason the result carries
    itself is kept otherwise); `explain_error` says why they are missing (the item goes
    to review all the same). Returns None if the item was routed already.
    """
    inspection = _lock(session, inspection_id)
    if inspection is None or inspection.status == "routed":
        session.rollback()
        return None
    photo_ids = [p.id for p in inspection.photos]
    if any(not 0 <= r.photo_index < len(photo_ids) for r in result.regions):
        session.rollback()
        raise ValueError("the inference result names a photo this inspection does not have")
    decided = decide(inspection_id=inspection.id, result=result, settings=settings)
    unexplained = set(regions_to_explain(result, decided, settings)) if explain_error else set()
    scores = region_scores(result)
    for index, (region, score) in enumerate(zip(result.regions, scores, strict=True)):
        reason = (reasons or {}).get(index) or region.classification.reason
        row = _region_row(region, score, reason)
        if index in unexplained:
            row.evidence["reason_error"] = explain_error
        row.inspection_id, row.photo_id = inspection.id, photo_ids[region.photo_index]
        session.add(row)
    inspection.detector_version = result.detector_version or None
    inspection.classifier_version = result.classifier_version
    inspection.prompt_version = result.prompt_version
    inspection.arm = result.arm
    inspection.timings = result.timings
    inspection.inference_error = _region_errors(result)
    _apply_route(session, inspection, decided, settings)
    session.commit()
    return decided


def _region_row(region: RegionResult, score: RegionScore, reason: str) -> Region:
    c = region.classification
    return Region(
        x1=region.box.x1,
        y1=region.box.y1,
        x2=region.box.x2,
        y2=region.box.y2,
        detector_score=region.detector_score,
        defect_type=c.defect_type,
        severity=c.severity,
        confidence=score.confidence,
        reason=reason,
        evidence=region_evidence(region),
    )


def region_evidence(region: RegionResult) -> dict[str, Any]:
    """Both steps' evidence, as the reviewer and error analysis read it (Region.evidence).

    `type_distribution` is step 1 as scored; `final_distribution` and `type_probability`
    are after step 2; each exception keeps its probability, threshold and whether it fired.
    """
    c = region.classification
    evidence: dict[str, Any] = {
        "type_distribution": c.type_distribution,
        "severity_distribution": c.severity_distribution,
        "type_probability": c.type_probability,
        "severity_probability": c.severity_probability,
        "candidate_type": c.candidate_type or c.defect_type,
        "final_distribution": c.final_distribution,
        "exceptions": [
            {"key": e.key, "probability": e.probability, "threshold": e.threshold, "fired": e.fired}
            for e in c.exceptions
        ],
        "overturned_by": c.overturned_by,
    }
    if c.error:
        evidence["error"] = c.error
    if region.whole_image:
        evidence["whole_image"] = True
    return evidence


def _region_errors(result: InferenceResult) -> str | None:
    errors = [
        f"region {i} (photo {r.photo_index}): {r.classification.error}"
        for i, r in enumerate(result.regions)
        if r.classification.error
    ]
    return "; ".join(errors)[:2000] or None


def record_failure(
    *, session: Session, inspection_id: uuid.UUID, error: str, settings: Settings
) -> Route | None:
    """Inference gave up: the item goes to human review, never to an automatic pass."""
    inspection = _lock(session, inspection_id)
    if inspection is None or inspection.status == "routed":
        session.rollback()
        return None
    decided = settings.routing.route(None, audit_draw(str(inspection.id)))
    inspection.inference_error = error[:2000]
    _apply_route(session, inspection, decided, settings)
    session.commit()
    return decided


def await_retry(*, session: Session, inspection_id: uuid.UUID, due_at: datetime) -> None:
    """An attempt failed and its retry is queued for `due_at`. The item stays `inferring`
    and its status_changed_at becomes the time it is due to move again, so the sweep (which
    reads it that way) leaves the retry alone until then, though no worker holds its claim."""
    inspection = session.scalar(
        select(Inspection).where(Inspection.id == inspection_id).with_for_update()
    )
    if inspection is not None and inspection.status == "inferring":
        inspection.status_changed_at = due_at
    session.commit()


def redispatch_abandoned(*, session: Session, grace: timedelta, now: datetime | None = None) -> int:
    """Queue inference again for items whose worker died while it held them.

    Such an item is `inferring` and no live worker holds its claim (a dead worker's claim
    ended with its database connection: app.inspections.claims). The grace spares an item
    whose retry is only a little late. It goes back to `queued` with an outbox row in the
    same transaction, so one sweep dispatches it once; a sweep running at the same moment
    skips the rows this one has locked. Routing stays exactly once whatever else arrives:
    every route is written under the row lock, only while the item is not yet routed.
    """
    now = now or utcnow()
    candidates = session.scalars(
        select(Inspection)
        .where(Inspection.status == "inferring", Inspection.status_changed_at < now - grace)
        .order_by(Inspection.status_changed_at)
        .with_for_update(skip_locked=True)
        .limit(500)
    ).all()
    abandoned = [i for i in candidates if claims.take_for_sweep(session, i.id)]
    for inspection in abandoned:
        inspection.status = "queued"
        inspection.status_changed_at = now
        session.add(Outbox(task=RUN_INFERENCE, payload={"inspection_id": str(inspection.id)}))
    session.commit()
    return len(abandoned)


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
