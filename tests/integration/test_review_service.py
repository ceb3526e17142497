"""The review queue on a real PostgreSQL: claim order, aging, leases, prefetch, concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app.db import utcnow
from app.review import service
from app.review.decisions import decide
from app.review.service import claim, claim_next
from app.review.tables import Decision, ReviewTask
from tests.integration.review_support import make_review_item, make_user

pytestmark = pytest.mark.integration

LEASE = 300
SLA = 3600  # make_review_item's SLA: one aging point every 36 s
STEP = SLA // 100


def aligned(offset_s: float = 0) -> datetime:
    """An hour ago, at the start of an aging step, plus `offset_s`."""
    start = (utcnow() - timedelta(hours=1)).timestamp() // STEP * STEP
    return datetime.fromtimestamp(start + offset_s, UTC)


def take(session: Session, user, now=None) -> ReviewTask | None:
    return claim_next(session=session, user_id=user.id, lease_seconds=LEASE, now=now)


def test_claims_lowest_confidence_then_highest_severity_then_oldest(db_session):
    t0 = aligned()
    sure = make_review_item(db_session, confidence=0.9, severity="severe", created_at=t0)
    minor = make_review_item(db_session, confidence=0.75, severity="minor", created_at=t0)
    severe_new = make_review_item(
        db_session, confidence=0.75, severity="severe", created_at=t0 + timedelta(seconds=20)
    )
    severe_old = make_review_item(db_session, confidence=0.75, severity="severe", created_at=t0)
    failed = make_review_item(db_session, confidence=0.0, severity="minor", created_at=t0)

    users = [make_user(db_session) for _ in range(6)]
    claimed = [take(db_session, user) for user in users]

    expected = [failed, severe_old, severe_new, minor, sure, None]
    assert [t.id if t else None for t in claimed] == [t.id if t else None for t in expected]


def test_an_item_that_waited_goes_ahead_of_a_fresher_less_certain_one(db_session):
    waited = make_review_item(db_session, confidence=0.90, created_at=aligned())
    quarter = aligned(SLA / 4)  # 25 aging points younger
    fresh = make_review_item(db_session, confidence=0.70, created_at=quarter)
    fresher_and_doubtful = make_review_item(db_session, confidence=0.60, created_at=quarter)
    order = [take(db_session, make_user(db_session)).id for _ in range(3)]
    assert order == [fresher_and_doubtful.id, waited.id, fresh.id]


def test_audits_wait_in_the_middle_of_the_band_whatever_their_confidence(db_session):
    t0 = aligned()
    low = make_review_item(db_session, confidence=0.72, created_at=t0)
    sure_audit = make_review_item(
        db_session, confidence=0.99, reason="audit", is_audit=True, created_at=t0
    )
    no_defect_audit = make_review_item(
        db_session, confidence=0.0, reason="audit", is_audit=True, created_at=t0
    )
    high = make_review_item(db_session, confidence=0.93, created_at=t0)
    order = [take(db_session, make_user(db_session)).id for _ in range(4)]
    assert order[0] == low.id and order[3] == high.id
    assert set(order[1:3]) == {sure_audit.id, no_defect_audit.id}
    # The real confidence is kept for reports; only the queue position is neutral.
    assert db_session.get(ReviewTask, sure_audit.id).confidence == 0.99


def test_a_reload_returns_the_task_the_user_holds_and_renews_its_lease(db_session):
    task = make_review_item(db_session)
    make_review_item(db_session, confidence=0.99)
    user = make_user(db_session)
    t0 = utcnow()

    first = take(db_session, user, now=t0)
    again = take(db_session, user, now=t0 + timedelta(seconds=60))

    assert first.id == again.id == task.id
    assert again.attempt == 1
    assert again.lease_expires_at == t0 + timedelta(seconds=60 + LEASE)


def test_the_page_holds_the_item_on_screen_and_the_next_one(db_session):
    first = make_review_item(db_session, confidence=0.71)
    second = make_review_item(db_session, confidence=0.72)
    third = make_review_item(db_session, confidence=0.73)
    alice, bob = make_user(db_session), make_user(db_session)

    held = claim(session=db_session, user_id=alice.id, lease_seconds=LEASE)
    assert (held.current.id, held.next.id) == (first.id, second.id)
    # Bob gets the one after: the prefetched item is Alice's.
    assert take(db_session, bob).id == third.id

    decide(session=db_session, task_id=first.id, user_id=alice.id, verdict="pass")
    held = claim(session=db_session, user_id=alice.id, lease_seconds=LEASE)
    assert (held.current.id, held.next) == (second.id, None)  # nothing left to prefetch


def test_a_claim_alone_commits_without_waiting_for_the_disk_and_one_with_a_decision_does(
    db_session,
):
    make_review_item(db_session, confidence=0.71)
    make_review_item(db_session, confidence=0.72)
    alice = make_user(db_session)
    db_session.commit()

    def synchronous_commit(**kwargs) -> str:
        claim(session=db_session, user_id=alice.id, lease_seconds=LEASE, commit=False, **kwargs)
        setting = db_session.scalar(text("SHOW synchronous_commit"))
        db_session.rollback()
        return setting

    # Set inside the claim's own statement (no round trip of its own), for its transaction.
    assert synchronous_commit() == "off"
    assert synchronous_commit(leases_only=False) == "on"


def test_a_second_inspector_does_not_get_the_leased_task(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)

    assert take(db_session, alice).id == task.id
    assert take(db_session, bob) is None


def test_an_expired_lease_is_claimable_again(db_session):
    task = make_review_item(db_session)
    alice, bob = make_user(db_session), make_user(db_session)
    t0 = utcnow()

    take(db_session, alice, now=t0)
    taken = take(db_session, bob, now=t0 + timedelta(seconds=LEASE + 1))

    assert taken.id == task.id
    assert (taken.lease_owner_id, taken.attempt) == (bob.id, 2)


def test_the_heartbeat_renews_only_leases_still_held(db_session):
    mine = make_review_item(db_session, confidence=0.71)
    lost = make_review_item(db_session, confidence=0.72)
    alice, bob = make_user(db_session), make_user(db_session)
    t0 = utcnow()
    claim(session=db_session, user_id=alice.id, lease_seconds=LEASE, now=t0)
    late = t0 + timedelta(seconds=LEASE + 5)
    # Both leases ran out; Bob took one of them meanwhile.
    assert take(db_session, bob, now=late).id == mine.id

    renewed = service.renew_leases(
        session=db_session, user_id=alice.id, lease_seconds=LEASE, now=late
    )

    assert renewed == {lost.id}
    db_session.expire_all()
    assert db_session.get(ReviewTask, lost.id).lease_expires_at == late + timedelta(seconds=LEASE)


def test_a_lead_releases_a_lease_and_logout_gives_back_everything(db_session):
    first = make_review_item(db_session, confidence=0.71)
    second = make_review_item(db_session, confidence=0.72)
    alice, lead = make_user(db_session), make_user(db_session, role="lead")
    claim(session=db_session, user_id=alice.id, lease_seconds=LEASE)

    assert service.release_task(session=db_session, task_id=first.id, actor_id=lead.id) == alice.id
    assert service.release_task(session=db_session, task_id=first.id, actor_id=lead.id) is None
    audit = db_session.execute(text("SELECT action, subject, actor_id FROM audit_event")).all()
    assert audit == [("review_task.release", f"review_task:{first.id}", lead.id)]

    assert service.release_user_leases(session=db_session, user_id=alice.id) == 1
    db_session.expire_all()
    assert db_session.get(ReviewTask, second.id).lease_owner_id is None


def _drain_queue(
    url: str, user_id: int, start: threading.Barrier
) -> tuple[list[int], list[datetime]]:
    """One inspector on the real page flow: hold the item and the next, decide, repeat.

    Returns the tasks decided and the moments the queue looked empty to them.
    """
    engine = create_engine(url, pool_size=1)
    decided, empty_at = [], []
    try:
        with Session(engine) as session:
            start.wait()
            while True:
                held = claim(session=session, user_id=user_id, lease_seconds=LEASE)
                if held.current is None:
                    empty_at.append(utcnow())
                    break
                decide(session=session, task_id=held.current.id, user_id=user_id, verdict="pass")
                decided.append(held.current.id)
    finally:
        engine.dispose()
    return decided, empty_at


@pytest.mark.timeout(300)
def test_twenty_inspectors_decide_five_hundred_items_exactly_once(fresh_database):
    """Every item is decided exactly once, and nobody is told the queue is empty while an
    item was still there for the taking."""
    workers, items = 20, 500
    url = fresh_database("loupe_review_race")
    engine = create_engine(url)
    with Session(engine) as session:
        user_ids = [make_user(session).id for _ in range(workers)]
        for i in range(items):
            make_review_item(session, confidence=0.7 + (i % 25) / 100)

    start = threading.Barrier(workers)
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_drain_queue, url, uid, start) for uid in user_ids]
        results = [future.result() for future in futures]

    decided = [task_id for ids, _ in results for task_id in ids]
    assert len(decided) == len(set(decided)) == items
    with Session(engine) as session:
        per_task = session.execute(
            select(Decision.review_task_id, func.count()).group_by(Decision.review_task_id)
        ).all()
        still_open = session.scalar(select(func.count()).where(ReviewTask.decided_at.is_(None)))
        claims = session.execute(select(ReviewTask.claimed_at, ReviewTask.attempt)).all()
    engine.dispose()
    assert len(per_task) == items and all(n == 1 for _, n in per_task)
    assert still_open == 0
    assert all(attempt == 1 for _, attempt in claims), "no lease ran out, none was taken twice"
    # An item whose claim began after someone saw an empty queue was free when they looked.
    for _, empty_at in results:
        for moment in empty_at:
            late = [at for at, _ in claims if at > moment]
            assert late == [], f"the queue looked empty at {moment} but {len(late)} were free"


def test_get_for_review_loads_the_item_and_the_next_items_photos(db_session):
    item_id = make_review_item(db_session, photos=2, regions_per_photo=2, confidence=0.71).id
    later_id = make_review_item(db_session, photos=3, confidence=0.72).id
    db_session.expunge_all()
    item, later = db_session.get(ReviewTask, item_id), db_session.get(ReviewTask, later_id)

    loaded = service.get_for_review(session=db_session, task=item, next_task=later)
    db_session.close()  # no lazy loads possible from here on

    assert (loaded.inspection.station, loaded.inspection.external_id) == ("dock-1", None)
    assert [p.position for p in loaded.photos] == [0, 1]
    assert [r.photo_id for r in loaded.regions] == [p.id for p in loaded.photos for _ in (1, 2)]
    assert len(loaded.next_photo_ids) == 3
