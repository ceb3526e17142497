"""Administration of users and station tokens: the admin pages and `loupe users/tokens`."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from app.auth.service import authenticate
from app.auth.tables import StationToken, User
from app.auth.throttle import record_failure
from app.cli import main
from app.db import utcnow
from tests.integration import web_support
from tests.integration.web_support import PASSWORD, add_user, log_in

pytestmark = pytest.mark.integration

make_app, client = web_support.make_app, web_support.client  # fixtures


def test_an_admin_creates_changes_and_disables_users(client, db_session):
    admin = add_user(db_session, role="admin")
    token = log_in(client, "admin-en")
    form = {"username": "mina", "role": "inspector", "language": "ko", "password": "s3cret-pass",
            "csrf_token": token}  # fmt: skip
    assert client.post("/admin/users", data=form).status_code == 303
    mina = db_session.scalar(select(User).where(User.username == "mina"))
    assert (mina.role, mina.language) == ("inspector", "ko")
    assert "User mina was created." in client.get("/admin/users").text

    again = client.post("/admin/users", data=form)
    assert again.status_code == 400 and "exists already" in again.text
    short = client.post("/admin/users", data={**form, "username": "x y", "password": "short"})
    assert short.status_code == 400 and "1 to 100 letters" in short.text

    client.post(f"/admin/users/{mina.id}/role", data={"role": "lead", "csrf_token": token})
    client.post(f"/admin/users/{mina.id}/password",
                data={"password": "another-pass", "csrf_token": token})  # fmt: skip
    client.post(f"/admin/users/{mina.id}/active", data={"active": "false", "csrf_token": token})
    db_session.refresh(mina)
    assert (mina.role, mina.is_active) == ("lead", False)
    db_session.expire_all()
    assert authenticate(session=db_session, username="mina", password="another-pass") is None

    # The last active admin can neither be disabled nor demoted.
    client.post(f"/admin/users/{admin.id}/active", data={"active": "false", "csrf_token": token})
    assert "at least one active administrator" in client.get("/admin/users").text
    db_session.refresh(admin)
    assert admin.is_active
    actions = db_session.execute(text("SELECT action FROM audit_event ORDER BY id")).scalars()
    assert list(actions)[-4:] == ["user.create", "user.role", "user.password", "user.disable"]


def test_a_disabled_user_is_logged_out_on_the_next_request(make_app, db_session):
    inspector = add_user(db_session)
    admin_client, user_client = make_app(), make_app()
    add_user(db_session, role="admin")
    token = log_in(admin_client, "admin-en")
    log_in(user_client, "inspector-en")
    assert user_client.get("/review").status_code == 200
    admin_client.post(f"/admin/users/{inspector.id}/active",
                      data={"active": "false", "csrf_token": token})  # fmt: skip
    assert user_client.get("/review").headers["location"].startswith("/login")


def test_station_tokens_are_shown_once_work_and_can_be_revoked(client, db_session):
    add_user(db_session, role="admin")
    token = log_in(client, "admin-en")
    created = client.post("/admin/tokens", data={"station": "<b>dock-9", "csrf_token": token})
    assert created.headers["cache-control"] == "no-store"
    station_token = re.search(r'<code class="token">(lst_[^<]+)</code>', created.text).group(1)
    assert "&lt;b&gt;dock-9" in created.text and "<b>dock-9" not in created.text
    api = {"Authorization": f"Bearer {station_token}"}
    assert client.post("/api/v1/inspections", headers=api).status_code == 400  # no image, but in

    row = db_session.scalar(select(StationToken))
    assert station_token not in client.get("/admin/tokens").text  # only its hash is kept
    client.post(f"/admin/tokens/{row.id}/revoke", data={"csrf_token": token})
    assert client.post("/api/v1/inspections", headers=api).status_code == 401


def test_an_admin_creates_a_warehouse_token_that_only_reads(client, db_session):
    add_user(db_session, role="admin")
    token = log_in(client, "admin-en")
    form = {"station": "wms", "scope": "warehouse", "csrf_token": token}
    created = client.post("/admin/tokens", data=form)
    warehouse_token = re.search(r'<code class="token">(lst_[^<]+)</code>', created.text).group(1)
    assert db_session.scalar(select(StationToken.scope)) == "warehouse"
    assert "Warehouse system" in client.get("/admin/tokens").text
    api = {"Authorization": f"Bearer {warehouse_token}"}
    assert client.get("/api/v1/inspections", headers=api).status_code == 200
    assert client.post("/api/v1/inspections", headers=api).status_code == 403
    form["scope"] = "everything"
    assert client.post("/admin/tokens", data=form).status_code == 400


def test_the_command_line_manages_users_and_tokens(database_url, committed_db, monkeypatch):
    monkeypatch.setenv("LOUPE_DATABASE_URL", database_url)
    runner = CliRunner()

    def loupe(*args: str, input: str | None = None) -> str:
        result = runner.invoke(main, list(args), input=input)
        assert result.exit_code == 0, result.output
        return result.output

    loupe("users", "create", "root", "--role", "admin", "--password", PASSWORD)
    loupe("users", "create", "mina", "--role", "inspector", "--language", "ko",
          "--password", PASSWORD)  # fmt: skip
    loupe("users", "set-role", "mina", "lead")
    loupe("users", "reset-password", "mina", input="brand-new-pass\nbrand-new-pass\n")
    loupe("users", "disable", "mina")
    listing = loupe("users", "list")
    assert re.search(r"mina\s+lead\s+ko\s+disabled", listing)
    assert re.search(r"root\s+admin\s+en\s+active", listing)
    loupe("users", "enable", "mina")
    committed_db.expire_all()
    assert authenticate(session=committed_db, username="mina", password="brand-new-pass")

    for i in range(10):  # locked out by wrong passwords, then unlocked from the shell
        record_failure(session=committed_db, username="mina", address="10.0.0.9",
                       now=utcnow() - timedelta(seconds=300 - 20 * i))  # fmt: skip
    committed_db.commit()
    assert "unlocked mina" in loupe("users", "unlock", "mina")
    assert "was not locked" in loupe("users", "unlock", "--address", "10.0.0.7")
    assert runner.invoke(main, ["users", "unlock"]).exit_code == 2

    refused = runner.invoke(main, ["users", "disable", "root"])
    assert refused.exit_code == 1 and "last active admin" in refused.output
    assert runner.invoke(main, ["users", "disable", "nobody"]).exit_code == 1

    station_token = loupe("tokens", "create", "dock-4").strip()
    assert station_token.startswith("lst_")
    [line] = [x for x in loupe("tokens", "list").splitlines() if "dock-4" in x]
    token_id = line.split()[0]
    assert "active" in line
    loupe("tokens", "revoke", token_id)
    assert "revoked" in loupe("tokens", "list")
    assert runner.invoke(main, ["tokens", "revoke", token_id]).exit_code == 1
    assert loupe("tokens", "create", "wms", "--warehouse").startswith("lst_")
    assert re.search(r"wms\s+warehouse\s+created", loupe("tokens", "list"))
