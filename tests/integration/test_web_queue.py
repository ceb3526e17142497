"""The lead's queue page over HTTP: what it shows, release, send back, escaping."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.review.decisions import decide
from app.review.service import claim_next
from app.review.tables import ReviewTask
from tests.integration import web_support
from tests.integration.review_support import make_user
from tests.integration.web_support import HTMX, add_user, log_in, stored_item

pytestmark = pytest.mark.integration

make_app, client = web_support.make_app, web_support.client  # fixtures


def test_the_lead_sees_holders_and_releases_a_lease(client, db_session):
    task = stored_item(db_session, external_id="RMA-77")
    holder = make_user(db_session, name="mina")
    claim_next(session=db_session, user_id=holder.id, lease_seconds=300)
    add_user(db_session, role="lead")
    token = log_in(client, "lead-en")

    page = client.get("/review/queue").text
    assert "mina" in page and "RMA-77" in page and f"/review/tasks/{task.id}/release" in page
    assert "Backlog by priority" in page

    released = client.post(f"/review/tasks/{task.id}/release", data={"csrf_token": token})
    assert released.headers["location"] == "/review/queue"
    assert f"Item #{task.id} is back in the queue." in client.get("/review/queue").text
    db_session.expire_all()
    assert db_session.get(ReviewTask, task.id).lease_owner_id is None


def test_the_lead_sends_a_decided_item_back_and_it_comes_first(client, db_session):
    old = stored_item(db_session, name="old", confidence=0.9)
    stored_item(db_session, name="new", confidence=0.71)
    alice = make_user(db_session, name="alice")
    claim_next(session=db_session, user_id=alice.id, lease_seconds=300)
    decide(session=db_session, task_id=old.id, user_id=alice.id, verdict="pass",
           note="<script>alert(1)</script>")  # fmt: skip
    add_user(db_session, role="lead")
    token = log_in(client, "lead-en")

    page = client.get("/review/queue").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    client.post(f"/review/tasks/{old.id}/send-back", data={"csrf_token": token})
    assert "is back in the queue for another review" in client.get("/review/queue").text
    # The lead reviews too: the sent-back item kept its age and comes before a fresher one.
    assert f"/review/{old.id}/decision" in client.get("/review").text
    assert "back in review" in client.get("/review/queue").text


def test_the_numbers_refresh_as_a_fragment(client, db_session):
    add_user(db_session, role="lead")
    log_in(client, "lead-en")
    fragment = client.get("/review/queue", headers=HTMX).text
    assert fragment.startswith('<div id="queue-live"') and "<html" not in fragment
    assert 'hx-trigger="every 15s"' in fragment
    assert db_session.scalar(select(ReviewTask.id)) is None
