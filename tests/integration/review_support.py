"""Rows for the review-queue and review-page tests: users and inspections queued for review."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from app.auth.tables import User
from app.db import utcnow
from app.inspections.tables import Inspection, Photo, Region
from app.review.service import create_review_task
from app.review.tables import ReviewTask


def make_user(session: Session, role: str = "inspector", name: str | None = None) -> User:
    """A user without a usable password (the service tests never log in)."""
    user = User(username=name or f"{role}-{uuid.uuid4().hex[:8]}", password_hash="!", role=role)
    session.add(user)
    session.flush()
    return user


def make_review_item(
    session: Session,
    *,
    confidence: float = 0.8,
    severity: str = "moderate",
    reason: str = "uncertain",
    is_audit: bool = False,
    created_at: datetime | None = None,
    region_reason: str = "A brown mark on the sleeve.",
    photo_key: str | None = None,
    photo_size: tuple[int, int] = (320, 240),
    photos: int = 1,
    regions_per_photo: int = 1,
    defect_type: str = "stain",
    evidence: dict | None = None,
    external_id: str | None = None,
    station: str = "dock-1",
    sla_seconds: int = 3600,
    detector_score: float = 0.9,
) -> ReviewTask:
    """An inspection routed to review, with its photos and regions, and its queued task."""
    created_at = created_at or utcnow()
    inspection = Inspection(
        station=station,
        external_id=external_id,
        detector_version="det-test-1",
        classifier_version="cls-test-1",
        prompt_version="v-test",
        status="routed",
        route="review",
        route_reason=reason,
        confidence=confidence,
        is_audit=is_audit,
        created_at=created_at,
    )
    for position in range(photos):
        key = photo_key or hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        inspection.photos.append(_photo(key, position, photo_size))
    session.add(inspection)
    session.flush()
    for photo in inspection.photos:
        for i in range(regions_per_photo):
            box = (10.0 + 40 * i, 20.0, 110.0 + 40 * i, 90.0)
            region = _region(inspection, photo, box, severity, confidence, region_reason)
            region.defect_type, region.detector_score = defect_type, detector_score
            region.evidence = evidence or {}
            session.add(region)
    task = create_review_task(
        session=session,
        inspection_id=inspection.id,
        reason=reason,
        confidence=confidence,
        severity=severity,
        is_audit=is_audit,
        sla_seconds=sla_seconds,
        now=created_at,
    )
    session.commit()
    return task


def _photo(key: str, position: int, size: tuple[int, int]) -> Photo:
    views = ("front", "back", "detail")
    return Photo(
        position=position,
        view=views[position % len(views)],
        object_key=key,
        content_hash=key,
        content_type="image/png",
        size_bytes=1,
        width=size[0],
        height=size[1],
    )


def _region(
    inspection: Inspection,
    photo: Photo,
    box: tuple[float, float, float, float],
    severity: str,
    confidence: float,
    reason: str,
) -> Region:
    x1, y1, x2, y2 = box
    return Region(
        inspection_id=inspection.id,
        photo_id=photo.id,
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        detector_score=0.9,
        defect_type="stain",
        severity=severity,
        confidence=confidence,
        reason=reason,
    )


def decide_in_arm(
    session: Session, user: User, arm: str, agree: bool, when: datetime, *,
    is_audit: bool = False,
) -> None:  # fmt: skip
    """An item served by experiment arm `arm`, decided by `user` at `when`: agreeing with the
    models' proposal (confirm, the stain kept) or overruling it (pass over the model's
    reject, its one box marked not a defect)."""
    from sqlalchemy import select, update

    from app.review import decisions

    task = make_review_item(session, created_at=when, is_audit=is_audit)
    session.execute(update(Inspection).where(Inspection.id == task.inspection_id).values(arm=arm))
    region = session.scalar(select(Region.id).where(Region.inspection_id == task.inspection_id))
    edits = None if agree else [{"region": region, "not_defect": True}]
    verdict = "confirm" if agree else "pass"
    decisions.decide(session=session, task_id=task.id, user_id=user.id, verdict=verdict,
                     now=when, region_edits=edits)  # fmt: skip


GATE_PASSED = {"passed": True, "reasons": ["pass: map50 0.9000 (minimum 0.85)"]}


def register_version(session: Session, kind: str, name: str, uri: str | None = None,
                     gate: dict | None = GATE_PASSED, prompt_version: str | None = None,
                     metrics: dict | None = None):  # type: ignore[no-untyped-def]  # fmt: skip
    """A model version in the registry at /models/<name> (or `uri`), its gate passed."""
    from app.registry import service

    return service.register_model_version(
        session=session, kind=kind, version=name, uri=uri or f"/models/{name}",
        content_hash=name.ljust(64, "0")[:64], metrics=metrics or {"map50": 0.9}, gate=gate,
        prompt_version=prompt_version,
    )  # fmt: skip
