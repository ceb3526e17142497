"""Recording model results on a real PostgreSQL: regions, routes, review tasks, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.db import utcnow
from app.inspections import results
from app.inspections.tables import Inspection, Outbox, Photo, Region
from app.review.tables import ReviewTask
from models.contracts import Box, Classification, InferenceResult, RegionResult

pytestmark = pytest.mark.integration

SETTINGS = Settings(audit_rate=0.0)


def queued_inspection(session, photos: int = 1, status: str = "queued") -> Inspection:
    inspection = Inspection(station="dock-2", status=status)
    inspection.photos = [
        Photo(
            position=i,
            object_key=f"ab/{i}.png",
            content_hash="ab" * 32,
            content_type="image/png",
            size_bytes=10,
            width=640,
            height=480,
        )
        for i in range(photos)
    ]
    session.add(inspection)
    session.commit()
    return inspection


def result(*regions: tuple[int, float, float, str, str]) -> InferenceResult:
    return InferenceResult(
        regions=[
            RegionResult(
                photo_index=photo,
                box=Box(10, 20, 110, 220),
                detector_score=det,
                classification=Classification(
                    defect_type=dtype,
                    type_probability=prob,
                    severity=severity,
                    severity_probability=0.9,
                    type_distribution={dtype: prob, "normal": 1 - prob},
                    severity_distribution={severity: 0.9, "minor": 0.1},
                    reason="A <b>hole</b> near the hem.",
                ),
            )
            for photo, det, prob, dtype, severity in regions
        ],
        detector_version="det-1",
        classifier_version="cls-1",
        prompt_version="v1",
        timings={"total_ms": 12.0},
    )


def count(session, table) -> int:
    return session.scalar(select(func.count()).select_from(table))


def test_a_confident_severe_hole_is_auto_rejected_with_its_regions(db_session):
    inspection = queued_inspection(db_session, photos=2)
    out = result((1, 0.99, 0.99, "hole", "severe"), (0, 0.3, 0.2, "stain", "minor"))
    decided = results.record_result(
        session=db_session, inspection_id=inspection.id, result=out, settings=SETTINGS
    )
    assert (decided.kind, decided.verdict) == ("auto_reject", "reject")
    db_session.refresh(inspection)
    assert (inspection.status, inspection.route, inspection.verdict) == (
        "routed",
        "auto_reject",
        "reject",
    )
    assert inspection.confidence == pytest.approx(0.9801)
    assert inspection.detector_version == "det-1" and inspection.prompt_version == "v1"
    regions = db_session.scalars(select(Region).order_by(Region.id)).all()
    assert [r.photo_id for r in regions] == [inspection.photos[1].id, inspection.photos[0].id]
    assert regions[0].evidence["type_distribution"]["hole"] == pytest.approx(0.99)
    assert regions[0].reason == "A <b>hole</b> near the hem."  # stored as is, escaped on output
    assert count(db_session, ReviewTask) == 0


def test_an_uncertain_item_gets_one_review_task_and_a_repeat_changes_nothing(db_session):
    inspection = queued_inspection(db_session)
    out = result((0, 0.9, 0.9, "stain", "moderate"))
    first = results.record_result(
        session=db_session, inspection_id=inspection.id, result=out, settings=SETTINGS
    )
    again = results.record_result(
        session=db_session, inspection_id=inspection.id, result=out, settings=SETTINGS
    )
    assert first.kind == "review" and again is None
    task = db_session.scalar(select(ReviewTask))
    assert (task.reason, task.severity_rank) == ("uncertain", 2)
    assert task.confidence == pytest.approx(0.81)
    assert count(db_session, Region) == 1


def test_a_failure_goes_to_review_and_later_results_are_ignored(db_session):
    inspection = queued_inspection(db_session, status="inferring")
    decided = results.record_failure(
        session=db_session, inspection_id=inspection.id, error="timeout", settings=SETTINGS
    )
    assert (decided.kind, decided.reason, decided.verdict) == (
        "review",
        "inference_unavailable",
        None,
    )
    late = result((0, 0.99, 0.99, "stain", "minor"))
    assert (
        results.record_result(
            session=db_session, inspection_id=inspection.id, result=late, settings=SETTINGS
        )
        is None
    )
    db_session.refresh(inspection)
    assert inspection.route == "review" and inspection.inference_error == "timeout"


def test_a_result_naming_a_missing_photo_is_refused_and_writes_nothing(db_session):
    inspection = queued_inspection(db_session)
    with pytest.raises(ValueError, match="photo"):
        results.record_result(
            session=db_session,
            inspection_id=inspection.id,
            result=result((3, 0.9, 0.9, "stain", "minor")),
            settings=SETTINGS,
        )
    db_session.refresh(inspection)
    assert inspection.status == "queued" and count(db_session, Region) == 0


def test_start_inference_marks_inferring_and_skips_routed_items(db_session):
    inspection = queued_inspection(db_session, photos=2)
    keys = results.start_inference(session=db_session, inspection_id=inspection.id)
    assert keys == ["ab/0.png", "ab/1.png"]
    db_session.refresh(inspection)
    assert inspection.status == "inferring"
    routed = queued_inspection(db_session, status="routed")
    assert results.start_inference(session=db_session, inspection_id=routed.id) is None


def test_items_stuck_before_routing_are_dispatched_again(db_session):
    stuck = queued_inspection(db_session, status="inferring")
    fresh = queued_inspection(db_session)
    done = queued_inspection(db_session, status="routed")
    long_ago = utcnow() - timedelta(hours=2)
    for inspection in (stuck, done):
        inspection.status_changed_at = long_ago
    db_session.commit()
    assert results.redispatch_stuck(session=db_session, older_than=timedelta(minutes=30)) == 1
    payloads = [o.payload for o in db_session.scalars(select(Outbox))]
    assert payloads == [{"inspection_id": str(stuck.id)}]
    assert fresh.id != stuck.id
