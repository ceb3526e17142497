"""Wrong passwords slow an account and an address down, lock them, and are logged; an admin
unlocks; a changed password, role or status ends the user's open sessions."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.auth import service, throttle
from app.auth.tables import AuditEvent, LoginFailure
from app.db import utcnow
from tests.integration import web_support
from tests.integration.web_support import PASSWORD, add_user, csrf_from, log_in, session_csrf

make_app, client = web_support.make_app, web_support.client  # fixtures

pytestmark = pytest.mark.integration

ADDRESS = "testclient"  # what Starlette's test client reports as the caller's address


def try_login(client, username: str, password: str):
    token = csrf_from(client.get("/login").text)
    form = {"username": username, "password": password, "csrf_token": token}
    return client.post("/login", data=form)


def test_thirty_wrong_passwords_are_slowed_down_and_logged(client, db_session, caplog):
    add_user(db_session, role="admin", name="admin")
    caplog.set_level(logging.INFO, logger="loupe.auth")
    started = time.monotonic()
    codes = [try_login(client, "admin", f"guess-{i}").status_code for i in range(30)]
    assert time.monotonic() - started < 30  # refused, not slept on
    assert codes[:3] == [401, 401, 401]  # typos are free
    assert 429 in codes and codes.count(401) < 10
    refused = try_login(client, "admin", "guess-again")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Too many failed attempts" in refused.text
    # Even the right password is not checked while the account must wait.
    assert try_login(client, "admin", PASSWORD).status_code == 429
    assert "login failed for 'admin' from testclient" in caplog.text


def test_a_locked_account_is_refused_until_an_admin_unlocks_it(client, db_session):
    add_user(db_session, role="admin", name="boss")
    add_user(db_session, name="mina")
    start = utcnow() - timedelta(minutes=5)
    for i in range(10):  # ten failures that each waited out their delay
        throttle.record_failure(session=db_session, username="mina", address="10.9.9.9",
                                now=start + timedelta(seconds=20 * i))  # fmt: skip
    db_session.commit()
    assert db_session.scalar(select(AuditEvent.action).where(AuditEvent.subject == "account:mina"))

    locked = try_login(client, "mina", PASSWORD)
    assert locked.status_code == 429
    assert 9 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60

    token = log_in(client, "boss")
    page = client.get("/admin/users").text
    assert "Locked logins" in page and 'value="account:mina"' in page
    client.post("/admin/logins/unlock", data={"key": "account:mina", "csrf_token": token})
    client.post("/logout", data={"csrf_token": session_csrf(client)})

    assert try_login(client, "mina", PASSWORD).status_code == 303
    actions = db_session.scalars(
        select(AuditEvent.action).where(AuditEvent.subject == "account:mina")
    )
    assert list(actions) == ["login.lock", "login.unlock"]


def test_one_address_trying_many_accounts_is_throttled(client, db_session):
    add_user(db_session, name="mina")
    now = utcnow()
    for i in range(25):
        throttle.record_failure(session=db_session, username=f"user{i}", address=ADDRESS, now=now)
    db_session.commit()
    assert try_login(client, "mina", PASSWORD).status_code == 429
    # Another address is not held back by it.
    assert (
        throttle.wait_seconds(session=db_session, username="mina", address="10.1.1.1", now=now) == 0
    )


def test_a_good_login_clears_the_accounts_failures(client, db_session):
    add_user(db_session, name="mina")
    assert try_login(client, "Mina", "typo-typo").status_code == 401
    assert db_session.scalar(
        select(LoginFailure.failures).where(LoginFailure.key == "account:mina")
    )
    assert try_login(client, "mina", PASSWORD).status_code == 303
    assert db_session.scalar(select(LoginFailure).where(LoginFailure.key == "account:mina")) is None


@pytest.mark.parametrize("change", ["password", "role", "disable"])
def test_a_changed_password_role_or_status_ends_the_users_sessions(client, db_session, change):
    mina = add_user(db_session, name="mina")
    log_in(client, "mina")
    assert client.get("/review").status_code == 200
    if change == "password":
        service.set_password(session=db_session, user=mina, password="a new one!", actor_id=None)
    elif change == "role":
        service.set_role(session=db_session, user=mina, role="lead", actor_id=None)
    else:
        service.set_active(session=db_session, user=mina, active=False, actor_id=None)
    db_session.commit()
    ended = client.get("/review")
    assert ended.status_code == 303 and ended.headers["location"].startswith("/login")


def test_an_admin_who_changes_their_own_password_stays_logged_in(client, db_session):
    boss = add_user(db_session, role="admin", name="boss")
    token = log_in(client, "boss")
    form = {"password": "another password", "csrf_token": token}
    client.post(f"/admin/users/{boss.id}/password", data=form)
    assert client.get("/admin/users").status_code == 200


def test_production_marks_the_session_cookie_secure(make_app, db_session):
    add_user(db_session, name="mina")
    secure = make_app(
        env={"LOUPE_ENVIRONMENT": "production", "LOUPE_SECRET_KEY": "a-real-secret-key"}
    )
    response = try_login(secure, "mina", PASSWORD)
    assert "secure" in response.headers["set-cookie"].lower()
    plain = make_app()
    assert "secure" not in try_login(plain, "mina", PASSWORD).headers["set-cookie"].lower()
