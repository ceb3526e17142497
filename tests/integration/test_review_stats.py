"""Numbers for inspectors and leads, aggregated in SQL on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.review import stats
from app.review.decisions import decide
from app.review.reopen import send_back, undo
from app.review.service import claim_next
from app.review.tables import ReviewTask
from tests.integration.review_support import make_review_item, make_user

pytestmark = pytest.mark.integration

NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def decide_at(session, user, task, at, verdict="pass"):
    claim_next(session=session, user_id=user.id, lease_seconds=300, now=at)
    return decide(session=session, task_id=task.id, user_id=user.id, verdict=verdict, now=at)


def test_today_pace_and_agreement_with_audits(db_session):
    alice, bob = make_user(db_session), make_user(db_session)
    yesterday = NOON - timedelta(days=1)
    # Yesterday: three audits (two agreed with the automatic verdict), one ordinary item.
    for i, verdict in enumerate(["reject", "reject", "pass"]):
        audit = make_review_item(db_session, severity="severe", reason="audit", is_audit=True,
                                 created_at=yesterday)  # fmt: skip
        decide_at(db_session, alice, audit, yesterday + timedelta(minutes=i), verdict)
    decide_at(db_session, alice, make_review_item(db_session, created_at=yesterday), yesterday)
    # Today: six decisions in the last 30 minutes, one of them undone; an audit today.
    for i in range(6):
        task = make_review_item(db_session, created_at=NOON - timedelta(hours=1))
        made = decide_at(db_session, alice, task, NOON - timedelta(minutes=30 - 5 * i))
    undo(session=db_session, decision_id=made.id, user_id=alice.id, window_seconds=10,
         lease_seconds=300, now=made.created_at)  # fmt: skip
    audit_today = make_review_item(db_session, severity="severe", reason="audit", is_audit=True)
    decide_at(db_session, alice, audit_today, NOON - timedelta(minutes=1), "pass")
    decide_at(db_session, bob, make_review_item(db_session), NOON)

    numbers = stats.inspector_numbers(session=db_session, user_id=alice.id, now=NOON,
                                      timezone="UTC")  # fmt: skip

    assert numbers.today == 6  # five kept + today's audit; the undone one does not count
    # Since the first decision today (30 min ago): 6 decisions in half an hour.
    assert numbers.pace_per_hour == 12
    # Today's audit is left out: the number must not move right after an audit.
    assert (numbers.audits, numbers.audit_agreement) == (3, pytest.approx(2 / 3))


def test_the_day_starts_at_midnight_at_the_site(db_session):
    alice = make_user(db_session)
    late_evening_utc = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # 01:00 on the 21st in Seoul
    before = late_evening_utc - timedelta(hours=2)
    decide_at(db_session, alice, make_review_item(db_session), before)
    in_seoul = stats.inspector_numbers(session=db_session, user_id=alice.id,
                                       now=late_evening_utc, timezone="Asia/Seoul")  # fmt: skip
    in_utc = stats.inspector_numbers(session=db_session, user_id=alice.id,
                                     now=late_evening_utc, timezone="UTC")  # fmt: skip
    assert (in_seoul.today, in_utc.today) == (0, 1)


def test_queue_overview_bands_breaches_and_holders(db_session):
    now = datetime.now(UTC)
    overdue = make_review_item(db_session, confidence=0.9, created_at=now - timedelta(hours=2))
    make_review_item(db_session, confidence=0.0, reason="inference_unavailable")  # urgent
    make_review_item(db_session, confidence=0.75)  # high: below the middle of the band
    make_review_item(db_session, confidence=0.90, sla_seconds=1200)  # normal, due in 20 min
    decided = make_review_item(db_session, confidence=0.80)
    alice, lead = make_user(db_session, name="alice"), make_user(db_session, role="lead")
    decide_at(db_session, alice, decided, now)
    claim_next(session=db_session, user_id=alice.id, lease_seconds=300)

    overview = stats.queue_overview(session=db_session, now=now, sla_seconds=3600,
                                    aging_weight=1.0, low=0.70, high=0.95)  # fmt: skip

    assert overview.open == 4
    assert overview.bands == {"overdue": 1, "urgent": 1, "high": 1, "normal": 1}
    assert (overview.held, overview.due_soon) == (1, 1)
    assert overview.oldest_created_at == overdue.created_at
    [holding] = stats.holdings(session=db_session, now=now)
    assert (holding.username, holding.task_id) == ("alice", overdue.id)  # the oldest went first

    send_back(session=db_session, task_id=decided.id, actor_id=lead.id)
    [recent] = stats.recent_decisions(session=db_session)
    assert (recent.username, recent.state) == ("alice", "reopened")
    assert stats.recent_decisions(session=db_session, search="nobody") == []
    [today] = stats.inspectors_today(session=db_session, now=now, timezone="UTC")
    assert (today.username, today.decided) == ("alice", 1)
    assert db_session.get(ReviewTask, decided.id).decided_at is None
