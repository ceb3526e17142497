"""Webhooks end to end on a real PostgreSQL and a real HTTP receiver: a decision commits
its event, the outbox relay hands it to the Celery task (run in this process), the task
POSTs it signed; failures are retried with backoff and logged; a replay sends the same
event again; re-reviews, undos and automatic routes each send the outcome then in effect.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.config import Settings
from app.db import utcnow
from app.inspections import results
from app.inspections import service as inspections
from app.inspections.schemas import InspectionOut
from app.outbox import Outbox
from app.policy.webhooks import SIGNATURE_HEADER, verify
from app.review.decisions import decide
from app.review.reopen import send_back, undo
from app.webhooks import service
from app.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEvent
from tests.integration.review_support import make_review_item, make_user
from tests.integration.test_results import queued_inspection, result
from tests.integration.webhook_support import receiver, relay_webhooks
from tests.support import reset_caches

pytestmark = pytest.mark.integration


@pytest.fixture
def site(database_url, monkeypatch):
    """The worker's settings, as an operator sets them; retries are captured, not queued."""
    from workers.tasks import webhooks as task

    for name, value in {"TIMEOUT_S": "0.5", "MAX_ATTEMPTS": "3", "BACKOFF_S": "10",
                        "BACKOFF_MAX_S": "15"}.items():  # fmt: skip
        monkeypatch.setenv(f"LOUPE_WEBHOOK_{name}", value)
    reset_caches()
    retries: list[tuple[int, float]] = []
    monkeypatch.setattr(task, "schedule_retry", lambda d, countdown: retries.append((d, countdown)))
    yield retries
    monkeypatch.undo()
    reset_caches()


def deliveries(session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def make_due(session, delivery_id: int) -> None:
    """Time passes: the retry the task asked for is due now."""
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()


def decided_item(session, verdict: str = "reject", **item):  # type: ignore[no-untyped-def]
    task = make_review_item(session, external_id=item.pop("external_id", "RMA-1042"), **item)
    user = make_user(session)
    decision = decide(session=session, task_id=task.id, user_id=user.id, verdict=verdict,
                      unmarked=True)  # fmt: skip
    return task, user, decision


def test_a_decision_is_delivered_signed_with_the_outcome_the_api_gives(committed_db, site):
    with receiver() as wms:
        endpoint, secret = service.add_endpoint(session=committed_db, url=wms.url,
                                                events=["decided"])  # fmt: skip
        committed_db.commit()
        task, _, decision = decided_item(committed_db, station="dock-3/cam-1")

        assert relay_webhooks() == ["delivered"]

    [got] = wms.requests
    assert verify(secret, got.body, got.headers[SIGNATURE_HEADER], now=time.time())
    assert not verify("whsec_another", got.body, got.headers[SIGNATURE_HEADER], now=time.time())
    assert not verify(secret, got.body + b" ", got.headers[SIGNATURE_HEADER], now=time.time())
    assert got.headers["Content-Type"] == "application/json"
    event = json.loads(got.body)
    assert got.headers["Loupe-Event-Id"] == event["id"]
    assert event["type"] == got.headers["Loupe-Event"] == "inspection.decided"
    inspection = inspections.get(session=committed_db, inspection_id=task.inspection_id)
    api = InspectionOut.of(inspection, decision).model_dump(mode="json")
    assert event["inspection"] == {
        "id": api["id"], "station": "dock-3/cam-1", "external_id": "RMA-1042",
        "outcome": api["outcome"],
    }  # fmt: skip
    assert event["inspection"]["outcome"]["verdict"] == "reject"
    [row] = deliveries(committed_db)
    assert (row.endpoint_id, row.status, row.attempts, row.last_status_code) == (
        endpoint.id, "delivered", 1, 200,
    )  # fmt: skip
    [attempt] = row.attempt_log
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, None)
    assert 0 < attempt.duration_ms < 500


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(committed_db, site):
    with receiver(statuses=[500, 503]) as wms:
        service.add_endpoint(session=committed_db, url=wms.url, events=["decided"])
        committed_db.commit()
        decided_item(committed_db)

        assert relay_webhooks() == ["retrying"]
        [row] = deliveries(committed_db)
        # A duplicate message before the retry is due sends nothing.
        from workers.tasks.webhooks import deliver_webhook

        assert deliver_webhook.apply(kwargs={"delivery_id": row.id}).get() == "skipped"
        make_due(committed_db, row.id)
        assert deliver_webhook.apply(kwargs={"delivery_id": row.id}).get() == "retrying"
        make_due(committed_db, row.id)
        assert deliver_webhook.apply(kwargs={"delivery_id": row.id}).get() == "delivered"

    # Backoff: 10 s, then 20 s capped at 15 s, each times a jitter in [0.5, 1].
    (first_id, first), (second_id, second) = site
    assert first_id == second_id == row.id
    assert 5 <= first <= 10 and 7.5 <= second <= 15
    [row] = deliveries(committed_db)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    log = [(a.number, a.status_code) for a in row.attempt_log]
    assert log == [(1, 500), (2, 503), (3, 200)]
    # The receiver's answer is kept, cut short and without the NUL PostgreSQL refuses.
    assert row.attempt_log[0].error == "HTTP 500: signature refused by test"
    assert len({r.body for r in wms.requests}) == 1  # the same event every time


def test_after_the_last_attempt_it_gives_up_and_a_replay_sends_the_same_event(committed_db, site):
    with receiver(statuses=[500, 500, 500]) as wms:
        service.add_endpoint(session=committed_db, url=wms.url, events=["decided"])
        committed_db.commit()
        decided_item(committed_db)
        assert relay_webhooks() == ["retrying"]
        from workers.tasks.webhooks import deliver_webhook

        [row] = deliveries(committed_db)
        for expected in ("retrying", "failed"):
            make_due(committed_db, row.id)
            assert deliver_webhook.apply(kwargs={"delivery_id": row.id}).get() == expected
        assert deliver_webhook.apply(kwargs={"delivery_id": row.id}).get() == "skipped"

        admin = make_user(committed_db, role="admin")
        service.replay(session=committed_db, delivery_id=row.id, actor_id=admin.id)
        committed_db.commit()
        assert relay_webhooks() == ["delivered"]

    first, *_, replayed = wms.requests
    assert len(wms.requests) == 4 and replayed.body == first.body
    assert replayed.headers["Loupe-Event-Id"] == first.headers["Loupe-Event-Id"]
    [row] = deliveries(committed_db)
    assert (row.status, row.replays, row.attempts) == ("delivered", 1, 1)
    log = [(a.replay, a.number, a.status_code) for a in row.attempt_log]
    assert log == [(0, 1, 500), (0, 2, 500), (0, 3, 500), (1, 1, 200)]
    assert len(site) == 2  # retries were asked for after attempts 1 and 2 only


def test_a_retry_whose_message_was_lost_is_sent_again_by_the_sweep(committed_db, site):
    """The broker was away when the retry was sent (or lost it in a restart): once the
    delivery is overdue, beat's sweep sends it again, and only what is open and overdue."""
    from workers.tasks.webhooks import deliver_webhook, sweep_webhook_deliveries

    with receiver(statuses=[503]) as wms:
        service.add_endpoint(session=committed_db, url=wms.url, events=["decided"])
        committed_db.commit()
        decided_item(committed_db, external_id="RMA-1")
        decided_item(committed_db, external_id="RMA-2")
        assert sorted(relay_webhooks()) == ["delivered", "retrying"]
        lost, delivered = sorted(deliveries(committed_db), key=lambda d: d.status != "retrying")
        site.clear()  # the retry asked for above never reached the broker

        make_due(committed_db, lost.id)  # due a second ago: its message may still come
        assert sweep_webhook_deliveries.apply().get() == 0
        committed_db.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([lost.id, delivered.id]))
            .values(next_attempt_at=utcnow() - timedelta(minutes=3))
        )
        committed_db.commit()
        assert sweep_webhook_deliveries.apply().get() == 1
        assert site == [(lost.id, 0)]
        assert deliver_webhook.apply(kwargs={"delivery_id": lost.id}).get() == "delivered"

    assert sweep_webhook_deliveries.apply().get() == 0
    assert {d.status for d in deliveries(committed_db)} == {"delivered"}
    assert len(wms.requests) == 3


def test_a_slow_receiver_never_slows_a_decision_and_times_out_in_the_log(committed_db, site):
    with receiver(delay_s=3.0) as wms:
        service.add_endpoint(session=committed_db, url=wms.url, events=["decided"])
        committed_db.commit()
        task = make_review_item(committed_db)
        user = make_user(committed_db)
        started = time.perf_counter()
        decide(session=committed_db, task_id=task.id, user_id=user.id, verdict="pass")
        assert time.perf_counter() - started < 0.5  # the receiver would take 3 s
        assert wms.requests == []  # the decision wrote rows; it called nobody

        started = time.perf_counter()
        assert relay_webhooks() == ["retrying"]
        assert time.perf_counter() - started < 2.5  # the 0.5 s timeout, not the receiver's 3 s

    [row] = deliveries(committed_db)
    [attempt] = row.attempt_log
    assert attempt.status_code is None and "Timeout" in attempt.error
    assert 400 <= attempt.duration_ms < 2000


def test_a_rereview_and_an_undo_each_send_the_outcome_then_in_effect(committed_db, site):
    with receiver() as wms:
        service.add_endpoint(session=committed_db, url=wms.url, events=["decided"])
        committed_db.commit()
        task, alice, first = decided_item(committed_db, verdict="pass")
        lead = make_user(committed_db, role="lead")
        send_back(session=committed_db, task_id=task.id, actor_id=lead.id)  # nothing to tell
        second = decide(session=committed_db, task_id=task.id, user_id=lead.id,
                        verdict="reject", unmarked=True)  # fmt: skip
        undo(session=committed_db, decision_id=second.id, user_id=lead.id,
             window_seconds=60, lease_seconds=60)  # fmt: skip
        # The first decision of another item, undone: it has no outcome to tell.
        other, bob, only = decided_item(committed_db, verdict="reject", external_id="RMA-7")
        undo(session=committed_db, decision_id=only.id, user_id=bob.id,
             window_seconds=60, lease_seconds=60)  # fmt: skip

        assert relay_webhooks() == ["delivered"] * 4

    events = sorted((json.loads(r.body) for r in wms.requests), key=lambda e: e["occurred_at"])
    told = [(e["inspection"]["external_id"], e["inspection"]["outcome"]["verdict"]) for e in events]
    assert told == [("RMA-1042", "pass"), ("RMA-1042", "reject"), ("RMA-1042", "pass"),
                    ("RMA-7", "reject")]  # fmt: skip
    # The undo's event carries the first decision's outcome, decided when it was decided.
    assert events[2]["inspection"]["outcome"] == events[0]["inspection"]["outcome"]
    assert len({e["id"] for e in events}) == 4


def route(session, *region):  # type: ignore[no-untyped-def]
    """An inspection the models judged with these (photo, detector, type probability,
    type, severity) regions, recorded as the worker does."""
    item = queued_inspection(session)
    results.record_result(session=session, inspection_id=item.id, result=result(*region),
                          settings=Settings(audit_rate=0.0))  # fmt: skip
    return item


HOLE, STAIN = (0, 0.99, 0.99, "hole", "severe"), (0, 0.9, 0.85, "stain", "minor")


def test_automatic_routes_are_told_and_review_items_wait_for_their_inspector(committed_db, site):
    route(committed_db, HOLE)  # before any endpoint listens, nothing at all is written
    assert committed_db.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert committed_db.scalar(select(func.count()).select_from(Outbox)) == 0

    with receiver() as wms:
        service.add_endpoint(session=committed_db, url=wms.url, events=["decided"])
        committed_db.commit()
        rejected = route(committed_db, HOLE)  # confident and severe: rejected automatically
        route(committed_db, STAIN)  # uncertain: to review, where an inspector decides
        assert relay_webhooks() == ["delivered"]

    [got] = wms.requests
    outcome = json.loads(got.body)["inspection"]["outcome"]
    assert json.loads(got.body)["inspection"]["id"] == str(rejected.id)
    assert (outcome["decided_by"], outcome["verdict"], outcome["is_audit"]) == (
        "model", "reject", False,
    )  # fmt: skip
    assert [(r["defect_type"], r["source"]) for r in outcome["regions"]] == [("hole", "model")]


def test_a_removed_endpoint_gets_nothing_more(committed_db, site):
    with receiver() as wms:
        endpoint, _ = service.add_endpoint(session=committed_db, url=wms.url,
                                           events=["decided"])  # fmt: skip
        committed_db.commit()
        decided_item(committed_db)
        service.remove_endpoint(session=committed_db, endpoint_id=endpoint.id)
        committed_db.commit()
        assert relay_webhooks() == ["skipped"]
        decided_item(committed_db, external_id="RMA-2")  # after the removal: nothing written
    assert wms.requests == []
    assert committed_db.scalar(select(func.count()).select_from(WebhookAttempt)) == 0
    [row] = deliveries(committed_db)  # kept, closed, saying why
    assert (row.status, row.last_error) == ("failed", "the endpoint was removed")
    assert committed_db.scalar(select(func.count()).select_from(WebhookEvent)) == 1


def test_an_event_whose_rows_are_missing_fails_saying_why(committed_db, site):
    with receiver() as wms:
        service.add_endpoint(session=committed_db, url=wms.url, events=["decided"])
        committed_db.commit()
        decided_item(committed_db)
        # The event pointed at an item nobody decided (rows are never changed like this;
        # the test says what the log would show if they were).
        undecided = queued_inspection(committed_db)
        committed_db.execute(update(WebhookEvent).values(decision_id=None,
                                                         inspection_id=undecided.id))  # fmt: skip
        committed_db.commit()
        assert relay_webhooks() == ["skipped"]
    [row] = deliveries(committed_db)
    assert row.status == "failed" and "has no final outcome" in row.last_error
    assert wms.requests == []
