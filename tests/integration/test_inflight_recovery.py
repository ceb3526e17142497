"""Items a dead worker held are dispatched again quickly, exactly once, and never an item a
live worker holds; duplicate deliveries change nothing. Real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.config import get_settings
from app.db import session_scope, utcnow
from app.inspections import claims, results
from app.inspections.tables import Inspection
from app.outbox import Outbox
from app.review.tables import ReviewTask
from models.contracts import InferenceUnavailable
from tests.integration.test_models_worker import FakeClient, region, result, submitted
from tests.integration.test_results import queued_inspection
from tests.support import reset_caches
from workers.tasks import inference

pytestmark = pytest.mark.integration

GRACE = timedelta(seconds=60)


def inferring_since(session, seconds_ago: float) -> Inspection:
    inspection = queued_inspection(session, status="inferring")
    inspection.status_changed_at = utcnow() - timedelta(seconds=seconds_ago)
    session.commit()
    return inspection


def dispatched(session) -> list[str]:
    return [o.payload["inspection_id"] for o in session.scalars(select(Outbox).order_by(Outbox.id))]


def test_an_item_a_dead_worker_held_goes_back_once_and_a_live_workers_item_stays(db_session):
    abandoned = inferring_since(db_session, 90)  # its worker died: nobody holds the claim
    live = inferring_since(db_session, 90)  # a slow attempt on a live worker
    just_started = inferring_since(db_session, 5)  # within the grace
    waiting = inferring_since(db_session, -20)  # a failed attempt's retry is due in 20 s
    queued = queued_inspection(db_session)  # waits in the queue: the slow sweep's business
    with claims.hold(live.id) as held:  # another connection, as a live worker's
        assert held
        assert results.redispatch_abandoned(session=db_session, grace=GRACE) == 1
        assert results.redispatch_abandoned(session=db_session, grace=GRACE) == 0  # once
    assert dispatched(db_session) == [str(abandoned.id)]
    db_session.refresh(abandoned)
    assert abandoned.status == "queued"
    for inspection in (live, just_started, waiting):
        db_session.refresh(inspection)
        assert inspection.status == "inferring"
    assert queued.status == "queued"


def test_a_retry_that_never_came_is_dispatched_after_its_due_time_and_the_grace(db_session):
    waiting = queued_inspection(db_session, status="inferring")
    due = utcnow() + timedelta(seconds=32)
    results.await_retry(session=db_session, inspection_id=waiting.id, due_at=due)
    assert results.redispatch_abandoned(session=db_session, grace=GRACE, now=due + GRACE) == 0
    later = due + GRACE + timedelta(seconds=1)
    assert results.redispatch_abandoned(session=db_session, grace=GRACE, now=later) == 1


def test_a_routed_item_never_waits_for_a_retry(db_session):
    routed = queued_inspection(db_session, status="routed")
    before = routed.status_changed_at
    results.await_retry(session=db_session, inspection_id=routed.id, due_at=utcnow())
    db_session.refresh(routed)
    assert routed.status_changed_at == before


def test_one_claim_per_item_and_it_ends_with_the_holder(database_url):
    item, other = uuid.uuid4(), uuid.uuid4()
    with claims.hold(item) as first, claims.hold(item) as second, claims.hold(other) as third:
        assert (first, second, third) == (True, False, True)
    with claims.hold(item) as again:
        assert again


# --- through the task, with a fake inference endpoint -------------------------------------


@pytest.fixture
def worker_env(committed_db, tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_STORAGE_DIR", str(tmp_path / "photos"))
    monkeypatch.setenv("LOUPE_AUDIT_RATE", "0")
    monkeypatch.setenv("LOUPE_INFERENCE_RETRY_BACKOFF_S", "2")
    reset_caches()
    yield monkeypatch
    monkeypatch.undo()  # the real get_client back before its cache is cleared
    reset_caches()


def review_tasks(inspection_id: uuid.UUID) -> int:
    with session_scope() as session:
        query = select(func.count()).where(ReviewTask.inspection_id == inspection_id)
        return session.scalar(query)


def deliver(inspection_id: uuid.UUID) -> str:
    """The task as a worker runs it for one message."""
    return inference.run_inference.apply(args=[str(inspection_id)]).get()


def test_a_duplicate_delivery_creates_no_second_route_or_review_task(worker_env):
    inspection_id = submitted()
    worker_env.setattr(inference, "get_client", lambda: FakeClient(result(region(0.8))))
    assert deliver(inspection_id) == "review"
    with session_scope() as session:
        first = session.get(Inspection, inspection_id)
    # The same message again, as Redis redelivers a dead worker's message after its
    # visibility timeout, and as a sweep may dispatch an item once more.
    assert deliver(inspection_id) == "already routed"
    assert deliver(inspection_id) == "already routed"
    with session_scope() as session:
        again = session.get(Inspection, inspection_id)
        assert (again.route, again.routed_at) == ("review", first.routed_at)
    assert review_tasks(inspection_id) == 1


def test_a_delivery_while_a_live_worker_holds_the_item_changes_nothing(worker_env):
    inspection_id = submitted()
    client = FakeClient(result(region(0.8)))
    worker_env.setattr(inference, "get_client", lambda: client)
    with claims.hold(inspection_id):  # a live worker is inferring it right now
        assert deliver(inspection_id) == inference.INFERRING_ELSEWHERE
    with session_scope() as session:
        assert session.get(Inspection, inspection_id).status == "queued"
    assert client.explained == [] and review_tasks(inspection_id) == 0


class FailingClient(FakeClient):
    def infer(self, *, inspection_id: str, photos: list[bytes]):  # type: ignore[no-untyped-def]
        raise InferenceUnavailable("serve answered 503")


def test_a_failed_attempt_marks_when_its_retry_is_due_before_letting_go(worker_env):
    inspection_id = submitted()
    worker_env.setattr(inference, "get_client", lambda: FailingClient(result()))
    before = utcnow()
    with pytest.raises(inference.RetryLater) as raised:
        inference.attempt(inspection_id, retries=1, settings=get_settings())
    assert raised.value.countdown == 4.0
    with session_scope() as session:
        item = session.get(Inspection, inspection_id)
        assert item.status == "inferring"
        due = item.status_changed_at - timedelta(seconds=4)  # the retry's countdown ahead
        assert before <= due <= utcnow()


def test_the_last_failure_goes_to_review_never_auto_pass(worker_env):
    inspection_id = submitted()
    worker_env.setattr(inference, "get_client", lambda: FailingClient(result()))
    assert inference.attempt(inspection_id, retries=5, settings=get_settings()) == "review"
    with session_scope() as session:
        item = session.get(Inspection, inspection_id)
        assert (item.route, item.route_reason, item.verdict) == (
            "review",
            "inference_unavailable",
            None,
        )
    assert review_tasks(inspection_id) == 1
