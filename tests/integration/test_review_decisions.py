"""Decisions as ground truth on a real PostgreSQL: region answers, undo, re-review, leases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from app.db import utcnow
from app.feedback.tables import ErrorCase
from app.inspections.tables import Inspection, Region
from app.review import reopen
from app.review.decisions import LeaseLost, Refused, TaskNotFound, decide
from app.review.reopen import send_back, undo
from app.review.service import claim_next
from app.review.tables import Decision, DecisionRegion, DecisionUndo, ReviewTask
from tests.integration.review_support import make_review_item, make_user

pytestmark = pytest.mark.integration

LEASE = 300


def hold(session, user, now=None):
    return claim_next(session=session, user_id=user.id, lease_seconds=LEASE, now=now)


def verdict_of(session, task) -> str | None:
    session.expire_all()
    return session.get(Inspection, task.inspection_id).verdict


def test_a_decision_stores_every_region_answer_and_the_model_versions(db_session):
    task = make_review_item(db_session, regions_per_photo=2, severity="minor")
    first, second = db_session.scalars(select(Region).order_by(Region.id)).all()
    alice = make_user(db_session)
    hold(db_session, alice)

    decision = decide(
        session=db_session,
        task_id=task.id,
        user_id=alice.id,
        verdict="reject",
        note=" white shirt ",
        tags=["shadow", "white_fabric", "shadow"],
        region_edits=[
            {"region": first.id, "type": "hole", "severity": "severe"},
            {"region": second.id, "not_defect": True},
            {"photo": first.photo_id, "box": [5, 5, 60, 70], "type": "tear", "severity": "minor"},
        ],
    )

    assert (decision.verdict, decision.note, decision.tags) == (
        "reject", "white shirt", ["shadow", "white_fabric"],
    )  # fmt: skip
    assert (decision.detector_version, decision.classifier_version, decision.prompt_version) == (
        "det-test-1", "cls-test-1", "v-test",
    )  # fmt: skip
    # The model proposed a pass: an uncertain minor stain passes under the default table.
    assert (decision.model_verdict, decision.is_audit, decision.supersedes_id) == (
        "pass", False, None,
    )  # fmt: skip
    rows = db_session.scalars(select(DecisionRegion).order_by(DecisionRegion.id)).all()
    assert [(r.region_id, r.outcome, r.defect_type, r.severity) for r in rows] == [
        (first.id, "changed", "hole", "severe"),
        (second.id, "not_defect", "normal", None),
        (None, "added", "tear", "minor"),
    ]
    assert (rows[2].x1, rows[2].y1, rows[2].x2, rows[2].y2) == (5, 5, 60, 70)
    assert verdict_of(db_session, task) == "reject"


def test_confirm_takes_the_models_verdict_and_keeps_its_regions(db_session):
    task = make_review_item(db_session, severity="severe", is_audit=True, reason="audit")
    alice = make_user(db_session)
    hold(db_session, alice)

    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="confirm")

    assert (decision.verdict, decision.model_verdict, decision.is_audit) == (
        "reject", "reject", True,
    )  # fmt: skip
    assert [r.outcome for r in decision.regions] == ["confirmed"]
    assert db_session.scalar(select(func.count()).select_from(ErrorCase)) == 0


def test_confirm_after_a_correction_keeps_the_correction(db_session):
    """The inspector changed a region, then pressed Space out of habit: the correction is
    the ground truth, and the item is decided as it now stands (it was lost before)."""
    task = make_review_item(db_session, severity="severe", regions_per_photo=2)
    first, second = db_session.scalars(select(Region).order_by(Region.id)).all()
    alice = make_user(db_session)
    hold(db_session, alice)
    edits = [{"region": first.id, "type": "pilling", "severity": "minor"},
             {"region": second.id, "not_defect": True}]  # fmt: skip

    decision = decide(
        session=db_session, task_id=task.id, user_id=alice.id, verdict="confirm",
        region_edits=edits, expects="pass",
    )  # fmt: skip

    assert (decision.verdict, decision.model_verdict) == ("pass", "reject")
    assert [(r.outcome, r.defect_type, r.severity) for r in decision.regions] == [
        ("changed", "pilling", "minor"), ("not_defect", "normal", None),
    ]  # fmt: skip
    cases = db_session.scalars(select(ErrorCase.kind)).all()
    assert sorted(set(cases)) == ["classification_error", "false_positive"]
    assert verdict_of(db_session, task) == "pass"


def test_confirm_with_a_correction_counts_it_even_where_the_model_did_not(db_session):
    # A minor stain below the low threshold: the models' verdict ignores it ("pass").
    task = make_review_item(db_session, confidence=0.5, severity="minor")
    region = db_session.scalar(select(Region))
    alice = make_user(db_session)
    hold(db_session, alice)
    decision = decide(
        session=db_session, task_id=task.id, user_id=alice.id, verdict="confirm",
        region_edits=[{"region": region.id, "type": "hole", "severity": "severe"}],
    )  # fmt: skip
    assert (decision.verdict, decision.model_verdict) == ("reject", "pass")


def test_confirm_is_refused_when_the_button_showed_another_verdict(db_session):
    task = make_review_item(db_session, severity="severe")
    region = db_session.scalar(select(Region))
    alice = make_user(db_session)
    hold(db_session, alice)
    with pytest.raises(Refused) as refused:
        decide(
            session=db_session, task_id=task.id, user_id=alice.id, verdict="confirm",
            region_edits=[{"region": region.id, "severity": "minor"}], expects="reject",
        )  # fmt: skip
    assert (refused.value.code, refused.value.verdict) == ("verdict_changed", "pass")
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0
    # The shown verdict only binds the confirm key: P and R say their verdict themselves.
    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass",
                      expects="reject")  # fmt: skip
    assert decision.verdict == "pass"


@pytest.mark.parametrize("regions_per_photo", [0, 1])
def test_a_reject_that_marks_no_defect_is_refused_until_the_inspector_insists(
    db_session, regions_per_photo
):
    task = make_review_item(db_session, regions_per_photo=regions_per_photo)
    alice = make_user(db_session)
    hold(db_session, alice)
    not_defects = [{"region": r.id, "not_defect": True} for r in db_session.scalars(select(Region))]
    with pytest.raises(Refused) as refused:
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="reject",
               region_edits=not_defects)  # fmt: skip
    assert refused.value.code == "unmarked_reject"
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0

    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="reject",
                      region_edits=not_defects, unmarked=True)  # fmt: skip
    assert decision.verdict == "reject"
    assert all(r.outcome == "not_defect" for r in decision.regions)


def test_a_reject_with_a_drawn_box_needs_nothing_more(db_session):
    task = make_review_item(db_session, regions_per_photo=0)
    alice = make_user(db_session)
    hold(db_session, alice)
    photo_id = (
        db_session.scalar(select(Inspection).where(Inspection.id == task.inspection_id))
        .photos[0]
        .id
    )
    box = {"photo": photo_id, "box": [5, 5, 60, 70], "type": "tear", "severity": "minor"}
    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="reject",
                      region_edits=[box])  # fmt: skip
    assert [r.outcome for r in decision.regions] == ["added"]


def test_confirm_is_refused_without_a_model_result(db_session):
    task = make_review_item(db_session, reason="inference_unavailable", regions_per_photo=0)
    alice = make_user(db_session)
    hold(db_session, alice)
    with pytest.raises(ValueError, match="no model result"):
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="confirm")
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0
    # The task is still open and still the user's: they can pass or reject it.
    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass")
    assert decision.model_verdict is None


def test_bad_verdicts_tags_edits_and_unknown_tasks_are_refused(db_session):
    task = make_review_item(db_session)
    alice = make_user(db_session)
    with pytest.raises(ValueError, match="unknown verdict"):
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="maybe")
    with pytest.raises(ValueError, match="unknown tags"):
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass",
               tags=["<script>"])  # fmt: skip
    with pytest.raises(ValueError, match="not on this item"):
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass",
               region_edits=[{"region": -1, "type": "hole"}])  # fmt: skip
    with pytest.raises(TaskNotFound):
        decide(session=db_session, task_id=task.id + 1000, user_id=alice.id, verdict="pass")
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0


def test_deciding_a_task_that_someone_else_now_holds_raises_lease_lost(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)
    t0 = utcnow()
    hold(db_session, alice, now=t0)
    hold(db_session, bob, now=t0 + timedelta(seconds=LEASE + 1))

    with pytest.raises(LeaseLost) as lost:
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass",
               now=t0 + timedelta(seconds=LEASE + 2))  # fmt: skip
    assert not lost.value.already_decided
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0

    decision = decide(session=db_session, task_id=task.id, user_id=bob.id, verdict="reject")
    assert (decision.user_id, decision.attempt) == (bob.id, 2)


def test_an_expired_lease_that_nobody_took_is_still_accepted(db_session):
    task = make_review_item(db_session)
    alice = make_user(db_session)
    t0 = utcnow()
    hold(db_session, alice, now=t0)
    late = t0 + timedelta(seconds=LEASE * 3)
    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass",
                      now=late)  # fmt: skip
    assert decision.created_at == late


def test_a_decided_task_cannot_be_decided_again(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)
    hold(db_session, alice)
    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass")
    db_session.expire_all()
    closed = db_session.get(ReviewTask, task.id)
    assert (closed.decided_at, closed.decision_id) == (decision.created_at, decision.id)
    assert (closed.lease_owner_id, closed.lease_expires_at) == (None, None)
    assert hold(db_session, alice) is None and hold(db_session, bob) is None

    with pytest.raises(LeaseLost) as lost:
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="reject")
    assert lost.value.already_decided


def _undo(session, decision, user, seconds=1):
    at = decision.created_at + timedelta(seconds=seconds)
    return undo(session=session, decision_id=decision.id, user_id=user.id, window_seconds=10,
                lease_seconds=LEASE, now=at)  # fmt: skip


def test_undo_reopens_the_item_for_the_same_inspector_and_keeps_the_decision(db_session):
    task = make_review_item(db_session, confidence=0.71)
    later = make_review_item(db_session, confidence=0.72)
    alice, bob = make_user(db_session), make_user(db_session)
    hold(db_session, alice)
    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="reject",
                      tags=["print"])  # fmt: skip
    assert hold(db_session, alice).id == later.id  # the page moved on to the next item

    reopened = _undo(db_session, decision, alice)

    assert (reopened.id, reopened.decided_at, reopened.decision_id) == (task.id, None, None)
    assert reopened.lease_owner_id == alice.id
    assert verdict_of(db_session, task) is None
    # The decision row is untouched; the undo is a row of its own.
    row = db_session.get(Decision, decision.id)
    assert (row.verdict, row.tags) == ("reject", ["print"])
    assert db_session.scalar(select(DecisionUndo.user_id)) == alice.id
    # Back on Alice's screen ahead of the item she moved on to; nobody else gets it.
    assert hold(db_session, alice).id == task.id
    assert hold(db_session, bob) is None
    again = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass")
    assert again.supersedes_id is None and verdict_of(db_session, task) == "pass"


def test_undo_is_refused_after_the_window_for_others_and_twice(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)
    hold(db_session, alice)
    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass")

    with pytest.raises(Refused) as late:
        _undo(db_session, decision, alice, seconds=11)
    assert late.value.code == "too_late"
    with pytest.raises(Refused) as other:
        _undo(db_session, decision, bob)
    assert other.value.code == "not_yours"
    _undo(db_session, decision, alice)
    with pytest.raises(Refused) as twice:
        _undo(db_session, decision, alice)
    assert twice.value.code == "not_current"
    assert db_session.scalar(select(func.count()).select_from(DecisionUndo)) == 1


def test_a_re_review_supersedes_the_decision_and_the_history_stays(db_session):
    task = make_review_item(db_session)
    alice, bob, lead = make_user(db_session), make_user(db_session), make_user(db_session, "lead")
    hold(db_session, alice)
    first = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass")

    send_back(session=db_session, task_id=task.id, actor_id=lead.id)
    # Until someone decides again, the first decision is in effect.
    assert verdict_of(db_session, task) == "pass"
    with pytest.raises(Refused):
        send_back(session=db_session, task_id=task.id, actor_id=lead.id)

    assert hold(db_session, bob).id == task.id
    second = decide(session=db_session, task_id=task.id, user_id=bob.id, verdict="reject")
    assert (second.supersedes_id, second.attempt) == (first.id, 2)
    assert verdict_of(db_session, task) == "reject"

    # Bob takes his back: the first decision is in effect again, and the item is Bob's.
    _undo(db_session, second, bob)
    assert verdict_of(db_session, task) == "pass"
    assert db_session.get(ReviewTask, task.id).decision_id == first.id
    third = decide(session=db_session, task_id=task.id, user_id=bob.id, verdict="reject")
    assert third.supersedes_id == first.id
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 3
    events = db_session.execute(text("SELECT action FROM audit_event")).scalars().all()
    assert events == ["review_task.send_back"]


def test_undoable_finds_the_last_decision_within_the_window(db_session):
    task = make_review_item(db_session)
    alice = make_user(db_session)
    hold(db_session, alice)
    decision = decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass")
    found = reopen.undoable(session=db_session, user_id=alice.id, window_seconds=10)
    assert found.id == decision.id
    later = decision.created_at + timedelta(seconds=11)
    assert reopen.undoable(session=db_session, user_id=alice.id, window_seconds=10,
                              now=later) is None  # fmt: skip
