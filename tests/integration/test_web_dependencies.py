"""Views are handed the settings, the object store and the reader's translator as FastAPI
dependencies (app.deps): what the app is given is what its pages use."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app.db import utcnow
from app.review.tables import Decision, ReviewTask
from app.storage import LocalStore, get_store
from tests.integration import web_support
from tests.integration.review_support import make_review_item
from tests.integration.web_support import HTMX, add_user, log_in, stored_item
from tests.support import garment_photo

pytestmark = pytest.mark.integration

make_app, client = web_support.make_app, web_support.client  # fixtures


def post(client, url: str, token: str, data: dict | None = None):
    return client.post(url, data=data or {}, headers={**HTMX, "X-CSRF-Token": token})


def lease_left(db_session, task: ReviewTask) -> float:
    db_session.refresh(task)
    return (task.lease_expires_at - utcnow()).total_seconds()


def test_the_review_page_follows_the_settings_the_app_is_given(make_app, db_session):
    # None of these is the default (lease 300 s, undo 10 s, the eight standard tags).
    client = make_app(lease_seconds=120, undo_seconds=30, review_tags="glare,seam")
    first = stored_item(db_session, name="a", confidence=0.71)
    stored_item(db_session, name="b", confidence=0.72)
    add_user(db_session)
    token = log_in(client, "inspector-en")

    page = client.get("/review").text
    assert 'data-lease-seconds="120"' in page
    assert 'value="glare"' in page and 'value="shadow"' not in page
    assert 100 < lease_left(db_session, first) <= 120

    decided = post(client, f"/review/{first.id}/decision", token,
                   {"verdict": "pass", "tags": ["glare"]})  # fmt: skip
    assert db_session.scalar(select(Decision.tags)) == ["glare"]  # a tag of this site's
    assert 'data-seconds="30"' in decided.text  # the undo offer

    second = db_session.scalar(select(ReviewTask).where(ReviewTask.id != first.id))
    second.lease_expires_at = utcnow() + timedelta(seconds=5)
    db_session.commit()
    beat = post(client, "/review/heartbeat", token, {"task": second.id})
    assert beat.status_code == 204
    assert 100 < lease_left(db_session, second) <= 120


def test_photos_come_from_the_store_the_app_is_given(client, db_session, tmp_path):
    task = make_review_item(db_session, photo_key="elsewhere/a.png")
    elsewhere = LocalStore(tmp_path / "elsewhere")
    elsewhere.put("elsewhere/a.png", garment_photo(seed=7), "image/png")
    add_user(db_session)
    log_in(client, "inspector-en")
    photo_id = task.inspection.photos[0].id
    # The app's own store has no such file.
    assert client.get(f"/photos/{photo_id}").status_code == 404

    client.app.dependency_overrides[get_store] = lambda: elsewhere
    photo = client.get(f"/photos/{photo_id}")
    assert photo.status_code == 200 and photo.content == garment_photo(seed=7)


def test_a_message_in_the_users_language_reads_the_user_once(client, db_session):
    add_user(db_session, role="lead", language="ko")
    token = log_in(client, "lead-ko")
    user_queries: list[str] = []

    def count(conn, cursor, statement, *args):
        if 'FROM "user"' in statement:
            user_queries.append(statement)

    engine = db_session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        # The role check and the translator both need the user; FastAPI resolves it once.
        released = client.post("/review/tasks/999999/release", data={"csrf_token": token})
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert released.status_code == 303
    assert len(user_queries) == 1, user_queries
    page = html.unescape(client.get("/review/queue").text)
    assert "항목 #999999을(를) 맡은 사람이 없어 해제할 것이 없습니다." in page
