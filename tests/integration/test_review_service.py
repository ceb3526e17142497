"""The review queue on a real PostgreSQL: claim order, leases, decisions, concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.inspections.tables import Inspection
from app.review import service
from app.review.service import LeaseLost, TaskNotFound, claim_next, decide
from app.review.tables import Decision, ReviewTask
from tests.integration.review_support import make_review_item, make_user

pytestmark = pytest.mark.integration

LEASE = 300


def claim(session: Session, user, now=None) -> ReviewTask | None:
    return claim_next(session=session, user_id=user.id, lease_seconds=LEASE, now=now)


def test_claims_lowest_confidence_then_highest_severity_then_oldest(db_session):
    t0 = utcnow() - timedelta(hours=1)
    sure = make_review_item(db_session, confidence=0.9, severity="severe", created_at=t0)
    minor = make_review_item(db_session, confidence=0.75, severity="minor", created_at=t0)
    severe_new = make_review_item(
        db_session, confidence=0.75, severity="severe", created_at=t0 + timedelta(minutes=5)
    )
    severe_old = make_review_item(db_session, confidence=0.75, severity="severe", created_at=t0)
    failed = make_review_item(db_session, confidence=0.0, severity="minor", created_at=t0)

    users = [make_user(db_session) for _ in range(6)]
    claimed = [claim(db_session, user) for user in users]

    expected = [failed, severe_old, severe_new, minor, sure, None]
    assert [t.id if t else None for t in claimed] == [t.id if t else None for t in expected]


def test_a_reload_returns_the_task_the_user_holds_and_renews_its_lease(db_session):
    task = make_review_item(db_session)
    make_review_item(db_session, confidence=0.99)
    user = make_user(db_session)
    t0 = utcnow()

    first = claim(db_session, user, now=t0)
    again = claim(db_session, user, now=t0 + timedelta(seconds=60))

    assert first.id == again.id == task.id
    assert again.attempt == 1
    assert again.lease_expires_at == t0 + timedelta(seconds=60 + LEASE)


def test_a_second_inspector_does_not_get_the_leased_task(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)

    assert claim(db_session, alice).id == task.id
    assert claim(db_session, bob) is None


def test_an_expired_lease_is_claimable_again(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)
    t0 = utcnow()

    claim(db_session, alice, now=t0)
    taken = claim(db_session, bob, now=t0 + timedelta(seconds=LEASE + 1))

    assert taken.id == task.id
    assert (taken.lease_owner_id, taken.attempt) == (bob.id, 2)


def test_deciding_a_task_that_someone_else_now_holds_raises_lease_lost(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)
    t0 = utcnow()
    claim(db_session, alice, now=t0)
    claim(db_session, bob, now=t0 + timedelta(seconds=LEASE + 1))

    with pytest.raises(LeaseLost) as lost:
        decide(
            session=db_session,
            task_id=task.id,
            user_id=alice.id,
            verdict="pass",
            now=t0 + timedelta(seconds=LEASE + 2),
        )
    assert not lost.value.already_decided
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0

    decision = decide(session=db_session, task_id=task.id, user_id=bob.id, verdict="reject")
    assert (decision.user_id, decision.attempt) == (bob.id, 2)


def test_an_expired_lease_that_nobody_took_is_still_accepted(db_session):
    task = make_review_item(db_session)
    alice = make_user(db_session)
    t0 = utcnow()
    claim(db_session, alice, now=t0)

    late = t0 + timedelta(seconds=LEASE * 3)
    decision = decide(
        session=db_session, task_id=task.id, user_id=alice.id, verdict="pass", now=late
    )

    assert decision.created_at == late


def test_a_decision_closes_the_task_and_sets_the_inspection_verdict(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)
    claim(db_session, alice)

    decision = decide(
        session=db_session, task_id=task.id, user_id=alice.id, verdict="reject", note=" torn "
    )

    assert (decision.verdict, decision.note, decision.attempt) == ("reject", "torn", 1)
    db_session.expire_all()
    closed = db_session.get(ReviewTask, task.id)
    assert closed.decided_at == decision.created_at
    assert (closed.lease_owner_id, closed.lease_expires_at) == (None, None)
    assert db_session.get(Inspection, task.inspection_id).verdict == "reject"
    assert claim(db_session, alice) is None
    assert claim(db_session, bob) is None


def test_a_decided_task_cannot_be_decided_again(db_session):
    task = make_review_item(db_session)
    alice = make_user(db_session)
    claim(db_session, alice)
    decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="pass")

    with pytest.raises(LeaseLost) as lost:
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="reject")

    assert lost.value.already_decided
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 1


def test_bad_verdicts_and_unknown_tasks_are_refused(db_session):
    task = make_review_item(db_session)
    alice = make_user(db_session)
    with pytest.raises(ValueError, match="unknown verdict"):
        decide(session=db_session, task_id=task.id, user_id=alice.id, verdict="maybe")
    with pytest.raises(TaskNotFound):
        decide(session=db_session, task_id=task.id + 1000, user_id=alice.id, verdict="pass")


def test_get_for_review_loads_photos_and_regions(db_session):
    task_id = make_review_item(db_session).id
    db_session.expunge_all()

    loaded = service.get_for_review(session=db_session, task_id=task_id)
    db_session.close()  # no lazy loads possible from here on

    assert [p.id for p in loaded.inspection.photos] == [loaded.inspection.regions[0].photo_id]


def _drain_queue(url: str, user_id: int, start: threading.Barrier) -> list[int]:
    """One inspector with an engine of their own: claim and decide until the queue is empty."""
    engine = create_engine(url, pool_size=1)
    decided = []
    try:
        with Session(engine) as session:
            start.wait()
            while task := claim_next(session=session, user_id=user_id, lease_seconds=LEASE):
                decide(session=session, task_id=task.id, user_id=user_id, verdict="pass")
                decided.append(task.id)
    finally:
        engine.dispose()
    return decided


@pytest.mark.timeout(120)
def test_concurrent_inspectors_decide_every_item_exactly_once(fresh_database):
    """Eight inspectors drain a queue of 100 committed items; each is decided exactly once."""
    workers, items = 8, 100
    url = fresh_database("loupe_review_race")
    engine = create_engine(url)
    with Session(engine) as session:
        user_ids = [make_user(session).id for _ in range(workers)]
        for i in range(items):
            make_review_item(session, confidence=0.7 + (i % 25) / 100)

    start = threading.Barrier(workers)
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_drain_queue, url, uid, start) for uid in user_ids]
        decided = [task_id for future in futures for task_id in future.result()]

    assert len(decided) == len(set(decided)) == items
    with Session(engine) as session:
        per_task = session.execute(
            select(Decision.review_task_id, func.count()).group_by(Decision.review_task_id)
        ).all()
        still_open = session.scalar(select(func.count()).where(ReviewTask.decided_at.is_(None)))
    engine.dispose()
    assert len(per_task) == items and all(n == 1 for _, n in per_task)
    assert still_open == 0
