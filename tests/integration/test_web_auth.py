"""Login, roles, CSRF and the review page through HTTP, on a real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from app.config import Settings
from app.review.tables import Decision
from app.storage import get_store
from app.web import session_secret
from tests.integration import web_support
from tests.integration.web_support import (
    HTMX,
    PASSWORD,
    add_user,
    csrf_from,
    log_in,
    session_csrf,
    stored_item,
)

make_app, client = web_support.make_app, web_support.client  # fixtures

pytestmark = pytest.mark.integration


def test_anonymous_users_are_sent_to_login(client):
    response = client.get("/review")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/review"

    fragment = client.get("/review", headers=HTMX)
    assert fragment.headers["HX-Redirect"].startswith("/login?next=")

    assert client.get("/photos/1").status_code == 303


def test_an_ml_user_may_not_review(client, db_session):
    add_user(db_session, role="ml")
    log_in(client, "ml-en")
    assert client.get("/review").status_code == 403


def test_posts_without_the_csrf_token_are_refused(client, db_session):
    task = stored_item(db_session)
    add_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    url = f"/review/{task.id}/decision"

    assert client.post(url, data={"verdict": "pass"}).status_code == 403
    bad = {"verdict": "pass", "csrf_token": "forged"}
    assert client.post(url, data=bad).status_code == 403
    assert (
        client.post(url, data={"verdict": "pass"}, headers={"X-CSRF-Token": "x"}).status_code == 403
    )
    assert client.post("/logout").status_code == 403
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0

    ok = client.post(url, data={"verdict": "pass"}, headers={**HTMX, "X-CSRF-Token": token})
    assert ok.status_code == 200


def test_login_review_and_decide_end_to_end(client, db_session):
    first = stored_item(db_session, name="first", confidence=0.72)
    second = stored_item(db_session, name="second", confidence=0.8)
    user = add_user(db_session)
    token = log_in(client, "inspector-en", next_url="/review")

    page = client.get("/review")
    assert page.status_code == 200
    photo_id = first.inspection.photos[0].id
    assert f'href="/photos/{photo_id}"' in page.text
    assert 'viewBox="0 0 320 240"' in page.text
    assert "A brown mark on the sleeve." in page.text and "72%" in page.text

    photo = client.get(f"/photos/{photo_id}")
    assert photo.headers["content-type"] == "image/png"
    assert photo.content == get_store().get(first.inspection.photos[0].object_key)

    headers = {**HTMX, "X-CSRF-Token": token}
    decided = client.post(
        f"/review/{first.id}/decision", data={"verdict": "reject"}, headers=headers
    )
    assert decided.status_code == 200
    assert "<html" not in decided.text and f"/review/{second.id}/decision" in decided.text
    decision = db_session.scalar(select(Decision))
    assert (decision.review_task_id, decision.user_id, decision.verdict) == (
        first.id,
        user.id,
        "reject",
    )

    last = client.post(f"/review/{second.id}/decision", data={"verdict": "pass"}, headers=headers)
    assert 'id="review-item"' in last.text and 'hx-trigger="load delay:2s"' in last.text


def test_decide_and_next_is_a_handful_of_queries_however_many_photos(client, db_session):
    many = {"photos": 3, "regions_per_photo": 4}
    first = stored_item(db_session, name="a", confidence=0.71, **many)
    second = stored_item(db_session, name="b", confidence=0.72, **many)
    third = stored_item(db_session, name="c", confidence=0.73, **many)
    add_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    statements: list[str] = []
    url = f"/review/{first.id}/decision"  # read before counting: the test's own query

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    # As app.db.session_factory does: no reloading of every row after each commit.
    db_session.expire_on_commit = False
    engine = db_session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.post(
            url,
            data={"verdict": "pass"},
            headers={**HTMX, "X-CSRF-Token": token},
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert f"/review/{second.id}/decision" in response.text
    assert response.text.count('<rect class="line"') == 12
    photos_of_third = [f"/photos/{p.id}" for p in third.inspection.photos]
    assert f'data-photos="{" ".join(photos_of_third)}"' in response.text  # prefetched
    # user; decide: lock (with the versions and regions), insert decision, insert region
    # answers, and one statement that closes the task, sets the verdict and writes the
    # webhook event (which writes nothing where no endpoint listens, app.webhooks.events);
    # claim: renew held and lease the next, in one; load: inspection with its regions,
    # photos (with the next item's); today's numbers; and, because this "pass" overrules
    # the model's reject, the error cases. The savepoints stand in for a real session's
    # commit.
    assert len([s for s in statements if "SAVEPOINT" not in s]) <= 10, statements


def test_a_decision_without_javascript_redirects_back_to_the_queue(client, db_session):
    task = stored_item(db_session)
    add_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    form = {"verdict": "pass", "csrf_token": token}
    response = client.post(f"/review/{task.id}/decision", data=form)
    assert (response.status_code, response.headers["location"]) == (303, "/review")


def test_a_lost_lease_shows_a_clear_message_and_the_next_item(client, db_session):
    task = stored_item(db_session, name="lost", confidence=0.71)
    nxt = stored_item(db_session, name="next", confidence=0.9)
    add_user(db_session)
    other = add_user(db_session, role="lead")
    token = log_in(client, "inspector-en")
    client.get("/review")
    task.lease_owner_id = other.id  # another inspector took it after the lease ran out
    db_session.commit()

    response = client.post(
        f"/review/{task.id}/decision",
        data={"verdict": "pass"},
        headers={**HTMX, "X-CSRF-Token": token},
    )
    assert "another inspector took it" in response.text
    assert f"/review/{nxt.id}/decision" in response.text
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0


def test_model_reasons_are_escaped(client, db_session):
    stored_item(db_session, region_reason="<script>alert(1)</script>")
    add_user(db_session)
    log_in(client, "inspector-en")
    response = client.get("/review")
    # Belt and braces: no inline script runs even if escaping were ever missed.
    assert response.headers["content-security-policy"].startswith("default-src 'self';")
    page = response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_login_failure_is_generic_and_next_must_be_local(client, db_session):
    add_user(db_session)
    token = csrf_from(client.get("/login").text)
    wrong = {"username": "inspector-en", "password": "nope", "csrf_token": token}
    unknown = {**wrong, "username": "nobody"}
    for form in (wrong, unknown):
        response = client.post("/login", data=form)
        assert response.status_code == 401
        assert "The username or password is not correct." in response.text

    for target, expected in [
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/review?x=1", "/review?x=1"),
    ]:
        form = {"username": "inspector-en", "password": PASSWORD, "csrf_token": token}
        response = client.post("/login", data={**form, "next": target})
        assert response.headers["location"] == expected
        client.post("/logout", data={"csrf_token": session_csrf(client)})
        token = session_csrf(client)


def test_language_switch_is_saved_on_the_user(client, db_session):
    stored_item(db_session)
    user = add_user(db_session)
    token = log_in(client, "inspector-en")
    response = client.post(
        "/language", data={"language": "ko", "next": "/review", "csrf_token": token}
    )
    assert response.headers["location"] == "/review"
    db_session.refresh(user)
    assert user.language == "ko"
    page = client.get("/review").text
    assert "통과" in page and "불합격" in page and 'lang="ko"' in page


def test_demo_banner_shows_when_demo_models_are_on(make_app):
    client = make_app(demo_models=True)
    assert "Demo models: random weights" in client.get("/login").text
    plain = make_app(demo_models=False)
    assert "Demo models" not in plain.get("/login").text


def test_the_station_api_stays_json_and_needs_no_csrf(client):
    response = client.post("/api/v1/inspections", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert set(response.json()) == {"detail"}


def test_only_development_may_run_without_a_session_secret():
    assert session_secret(Settings(environment="development", secret_key=""))
    assert session_secret(Settings(environment="production", secret_key="s3cr3t")) == "s3cr3t"
    with pytest.raises(RuntimeError, match="LOUPE_SECRET_KEY"):
        session_secret(Settings(environment="staging", secret_key=""))
