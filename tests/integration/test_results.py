"""Recording model results on a real PostgreSQL: regions, routes, review tasks, idempotency."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.db import utcnow
from app.inspections import results
from app.inspections.tables import Inspection, Photo, Region
from app.outbox import Outbox
from app.review.tables import ReviewTask
from models.contracts import (
    Box,
    Classification,
    ExceptionAnswer,
    InferenceResult,
    RegionResult,
)

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


def test_a_queued_item_whose_message_was_lost_goes_again_within_minutes(db_session):
    # The chaos suite found one: a worker killed as Redis handed it the item's message takes
    # the message with it (the transport pops it before the worker records it as unacked).
    lost = queued_inspection(db_session)
    lost.status_changed_at = utcnow() - timedelta(minutes=3)
    db_session.commit()
    older_than = timedelta(seconds=Settings().stuck_after_s)
    assert results.redispatch_stuck(session=db_session, older_than=older_than) == 1


def two_step_result(arm: str = "challenger") -> InferenceResult:
    """Three regions: a kept stain, a stain an exception overturned, a crop too small."""
    kept = Classification(
        "stain", 0.9 * 0.95, "moderate", 0.8,
        type_distribution={"stain": 0.9, "normal": 0.1},
        severity_distribution={"minor": 0.2, "moderate": 0.8},
        candidate_type="stain",
        exceptions=(ExceptionAnswer("shadow_or_lighting", 0.05, 0.8),),
        final_distribution={"stain": 0.9 * 0.95, "normal": 1 - 0.9 * 0.95},
    )  # fmt: skip
    overturned = Classification(
        "normal", 0.97, "minor", 0.6,
        type_distribution={"stain": 0.96, "normal": 0.04},
        candidate_type="stain",
        exceptions=(ExceptionAnswer("shadow_or_lighting", 0.97, 0.8),),
        final_distribution={"stain": 0.03, "normal": 0.97},
    )  # fmt: skip
    too_small = Classification.failed("crop too small to judge: 2x3 px (minimum 4 px a side)")
    boxes = [Box(10, 20, 110, 220), Box(300, 20, 400, 120), Box(5, 5, 7, 8)]
    return InferenceResult(
        regions=[
            RegionResult(0, box, 0.97, classification)
            for box, classification in zip(boxes, [kept, overturned, too_small], strict=True)
        ],
        detector_version="det-2",
        classifier_version="cls-2",
        prompt_version="v2+x1+t2024.1",
        arm=arm,
    )


def test_both_steps_evidence_reasons_and_the_arm_are_recorded(db_session):
    inspection = queued_inspection(db_session)
    out = two_step_result()
    decided = results.record_result(
        session=db_session,
        inspection_id=inspection.id,
        result=out,
        settings=SETTINGS,
        reasons={0: "A brown stain on the sleeve.", 1: "Only a shadow of the collar."},
    )
    assert (decided.kind, decided.reason) == ("review", "model_error")
    db_session.refresh(inspection)
    assert inspection.arm == "challenger" and inspection.classifier_version == "cls-2"
    assert "crop too small" in inspection.inference_error
    kept, overturned, small = db_session.scalars(select(Region).order_by(Region.id)).all()
    assert kept.reason == "A brown stain on the sleeve." and small.reason == ""
    assert kept.confidence == pytest.approx(0.97 * 0.9 * 0.95)
    assert overturned.defect_type == "normal"
    assert overturned.evidence["candidate_type"] == "stain"
    assert overturned.evidence["type_distribution"]["stain"] == pytest.approx(0.96)
    assert overturned.evidence["overturned_by"] == ["shadow_or_lighting"]
    assert overturned.evidence["exceptions"] == [
        {"key": "shadow_or_lighting", "probability": 0.97, "threshold": 0.8, "fired": True}
    ]
    assert small.evidence["error"].startswith("crop too small") and small.defect_type == "unknown"


def test_a_failed_explain_is_noted_on_the_regions_that_wanted_a_reason(db_session):
    inspection = queued_inspection(db_session)
    out = two_step_result()
    wanted = results.regions_to_explain(out, results.decide(
        inspection_id=inspection.id, result=out, settings=SETTINGS), SETTINGS)  # fmt: skip
    assert wanted == [1, 0]  # most confident first; the failed region wants none
    results.record_result(
        session=db_session, inspection_id=inspection.id, result=out, settings=SETTINGS,
        explain_error="InferenceUnavailable: explain timed out",
    )  # fmt: skip
    rows = db_session.scalars(select(Region).order_by(Region.id)).all()
    assert [r.evidence.get("reason_error") for r in rows] == [
        "InferenceUnavailable: explain timed out",
        "InferenceUnavailable: explain timed out",
        None,
    ]
    assert all(r.reason == "" for r in rows)
    db_session.refresh(inspection)
    assert inspection.route == "review"


def test_reasons_are_wanted_only_for_review_and_capped():
    out = result((0, 0.99, 0.99, "hole", "severe"))  # a confident reject
    settings = Settings(audit_rate=0.0, explain_max_regions=1)
    decided = results.decide(inspection_id=uuid.uuid4(), result=out, settings=settings)
    assert decided.kind == "auto_reject"
    assert results.regions_to_explain(out, decided, settings) == []
    many = result(*[(0, 0.9, 0.9 - i / 100, "stain", "minor") for i in range(3)])
    decided = results.decide(inspection_id=uuid.uuid4(), result=many, settings=settings)
    assert decided.kind == "review"
    assert results.regions_to_explain(many, decided, settings) == [0]


def test_a_cold_start_item_goes_to_review_with_its_whole_photo_region(db_session):
    inspection = queued_inspection(db_session)
    whole = RegionResult(
        0, Box(0, 0, 640, 480), 1.0,
        Classification("stain", 0.99, "severe", 0.9, {"stain": 0.99, "normal": 0.01}),
        whole_image=True,
    )  # fmt: skip
    out = InferenceResult([whole], "", "cls-1", "v2+x1+t2024.1")
    decided = results.record_result(
        session=db_session, inspection_id=inspection.id, result=out, settings=SETTINGS
    )
    assert (decided.kind, decided.reason) == ("review", "cold_start")
    db_session.refresh(inspection)
    assert inspection.detector_version is None and inspection.arm == "champion"
    region = db_session.scalar(select(Region))
    assert region.evidence["whole_image"] is True
    task = db_session.scalar(select(ReviewTask))
    assert task.reason == "cold_start"
