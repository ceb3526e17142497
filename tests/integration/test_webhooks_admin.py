"""/admin/webhooks and `loupe webhooks ...`: registering endpoints, refusals a person
understands, the secret shown once, the delivery log, replays and removal."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from app.cli import main
from app.outbox import Outbox
from app.review.decisions import decide
from app.task_names import DELIVER_WEBHOOK
from app.webhooks import body, service
from app.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.integration import web_support
from tests.integration.review_support import make_review_item, make_user
from tests.integration.web_support import HTMX, add_user, log_in

pytestmark = pytest.mark.integration

make_app, client = web_support.make_app, web_support.client  # fixtures

SECRET = re.compile(r'<code class="token webhook-secret">(whsec_[^<]+)</code>')


def add(client, csrf: str, **form):  # type: ignore[no-untyped-def]
    return client.post("/admin/webhooks", data={"events": "decided", **form, "csrf_token": csrf})


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(client, db_session):
    add_user(db_session, role="admin")
    csrf = log_in(client, "admin-en")
    assert "No endpoints yet." in client.get("/admin/webhooks").text

    created = add(client, csrf, url=" https://wms.example/loupe?<b>x</b> ")
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    secret = SECRET.search(created.text).group(1)
    assert "&lt;b&gt;x&lt;/b&gt;" in created.text and "<b>x</b>" not in created.text
    endpoint = db_session.scalar(select(WebhookEndpoint))
    assert (endpoint.url, endpoint.events, endpoint.secret) == (
        "https://wms.example/loupe?<b>x</b>", ["decided"], secret,
    )  # fmt: skip
    again = client.get("/admin/webhooks").text
    assert secret not in again and "wms.example" in again
    audit = db_session.execute(text("SELECT action FROM audit_event WHERE action LIKE 'webhook.%'"))
    assert audit.scalars().all() == ["webhook.add"]

    # A secret the admin brings is used as it is and never shown back.
    own = add(client, csrf, url="http://10.0.0.7:8080/hook", secret="a-vault-kept-secret-1")
    assert own.status_code == 200 and "a-vault-kept-secret-1" not in own.text
    assert not SECRET.search(own.text)


REFUSALS = [
    ({"url": "ftp://wms.example/x"}, "must start with http:// or https://"),
    ({"url": "wms.example/loupe"}, "must start with http:// or https://"),
    ({"url": "https://user:pw@wms.example/"}, "may not contain a user name or password"),
    ({"url": "https://wms.example/a b"}, "spaces or invisible characters"),
    ({"url": "https://" + "w" * 2000 + ".example"}, "at most 2000 characters"),
    ({"url": "https://wms.example/", "events": ""}, "Choose at least one event."),
    ({"url": "https://wms.example/", "events": "shipped"}, "Choose at least one event."),
    ({"url": "https://wms.example/", "secret": "short"}, "16 to 200 characters"),
]


def test_bad_input_is_refused_with_a_reason(client, db_session):
    add_user(db_session, role="admin")
    csrf = log_in(client, "admin-en")
    for form, says in REFUSALS:
        answer = add(client, csrf, **form)
        assert answer.status_code == 400, (form, answer.text[:300])
        assert says in answer.text, form
        assert 'value="' + form["url"] + '"' in answer.text  # the form keeps what was typed
    assert db_session.scalar(select(WebhookEndpoint)) is None


def test_the_page_speaks_korean_and_refuses_without_csrf_or_the_admin_role(make_app, db_session):
    add_user(db_session, role="admin", language="ko")
    add_user(db_session, role="lead")
    admin = make_app()
    log_in(admin, "admin-ko")
    assert "엔드포인트 추가" in admin.get("/admin/webhooks").text
    refused = admin.post(
        "/admin/webhooks", data={"url": "https://wms.example/", "events": "decided"}
    )
    assert refused.status_code == 403
    lead = make_app()
    csrf = log_in(lead, "lead-en")
    assert lead.get("/admin/webhooks").status_code == 403
    assert add(lead, csrf, url="https://wms.example/").status_code == 403
    assert db_session.scalar(select(WebhookEndpoint)) is None


def test_the_delivery_log_shows_attempts_and_replays_and_removal(client, db_session):
    admin = add_user(db_session, role="admin")
    csrf = log_in(client, "admin-en")
    endpoint, _ = service.add_endpoint(
        session=db_session, url="https://wms.example/", events=["decided"]
    )
    task = make_review_item(db_session, external_id="RMA-<i>9</i>")
    decide(session=db_session, task_id=task.id, user_id=make_user(db_session).id, verdict="pass")
    delivery = db_session.scalar(select(WebhookDelivery))
    # As the worker leaves it after a first attempt that the receiver refused.
    error = "HTTP 502: <b>down</b>"
    attempt = WebhookAttempt(delivery_id=delivery.id, number=1, duration_ms=12.5, error=error,
                             started_at=delivery.created_at, status_code=502)  # fmt: skip
    db_session.add(attempt)
    delivery.status, delivery.attempts, delivery.last_error = "retrying", 1, error
    delivery.event.body = body.build(db_session, delivery.event)
    db_session.commit()

    page = client.get(f"/admin/webhooks/{endpoint.id}").text
    assert "inspection.decided" in page and "#1 at" in page and "answer 502 in 12.5 ms" in page
    assert "&lt;b&gt;down&lt;/b&gt;" in page and "<b>down</b>" not in page
    assert "RMA-&lt;i&gt;9&lt;/i&gt;</span> · Pass" in page  # the item's id, escaped; verdict
    assert 'hx-trigger="every 2s"' in page  # a delivery is still being tried
    fragment = client.get(f"/admin/webhooks/{endpoint.id}", headers=HTMX)
    assert fragment.text.lstrip().startswith('<section class="card-wide" id="log"')

    replayed = client.post(f"/admin/webhooks/deliveries/{delivery.id}/replay",
                           data={"csrf_token": csrf})  # fmt: skip
    assert replayed.status_code == 303
    assert replayed.headers["location"] == f"/admin/webhooks/{endpoint.id}"
    assert (
        f"Delivery {delivery.id} will be sent again."
        in client.get(replayed.headers["location"]).text
    )
    db_session.refresh(delivery)
    assert (delivery.status, delivery.attempts, delivery.replays) == ("pending", 0, 1)
    queued = db_session.scalars(select(Outbox.payload).where(Outbox.task == DELIVER_WEBHOOK)).all()
    assert queued == [{"delivery_id": delivery.id}] * 2  # the decision's, then the replay's
    missing = client.post("/admin/webhooks/deliveries/999999/replay", data={"csrf_token": csrf})
    assert missing.status_code == 404
    assert client.get("/admin/webhooks/999999").status_code == 404

    removed = client.post(f"/admin/webhooks/{endpoint.id}/remove", data={"csrf_token": csrf})
    assert removed.status_code == 303
    assert "was removed: nothing more is sent to it" in client.get("/admin/webhooks").text
    db_session.refresh(delivery)
    assert delivery.status == "failed"  # it was owed a replay; no more
    assert client.get(f"/admin/webhooks/{endpoint.id}").status_code == 404
    assert client.post(f"/admin/webhooks/deliveries/{delivery.id}/replay",
                       data={"csrf_token": csrf}).status_code == 404  # fmt: skip
    again = client.post(f"/admin/webhooks/{endpoint.id}/remove", data={"csrf_token": csrf})
    assert "removed already" in client.get(again.headers["location"]).text
    actions = db_session.execute(
        text("SELECT action, actor_id FROM audit_event WHERE action LIKE 'webhook.%' ORDER BY id")
    ).all()
    assert actions == [("webhook.add", None), ("webhook.replay", admin.id),
                       ("webhook.remove", admin.id)]  # fmt: skip


def test_the_command_line_adds_lists_replays_and_removes(committed_db, database_url, monkeypatch):
    runner = CliRunner()

    def loupe(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(main, ["webhooks", *args], catch_exceptions=False)

    added = loupe("add", "https://wms.example/loupe", "--events", "decided")
    assert added.exit_code == 0, added.output
    secret = re.search(r"signing secret \(shown only now\): (whsec_\S+)", added.output).group(1)
    assert committed_db.scalar(select(WebhookEndpoint.secret)) == secret

    monkeypatch.setenv("WMS_WEBHOOK_SECRET", "from-the-vault-0123456789")
    own = loupe("add", "http://10.0.0.7/hook", "--secret-from-env", "WMS_WEBHOOK_SECRET")
    assert own.exit_code == 0 and "from-the-vault" not in own.output and "secret" not in own.output
    unset = loupe("add", "http://10.0.0.7/hook", "--secret-from-env", "NO_SUCH_VARIABLE_SET")
    assert unset.exit_code == 1 and "NO_SUCH_VARIABLE_SET is empty or unset" in unset.output
    bad = loupe("add", "ftp://wms.example/", "--events", "decided")
    assert bad.exit_code == 1 and "must start with http:// or https://" in bad.output
    unknown = loupe("add", "https://wms.example/", "--events", "shipped")
    assert unknown.exit_code == 1 and "unknown event 'shipped'" in unknown.output

    listed = loupe("list").output.splitlines()
    assert len(listed) == 2 and "https://wms.example/loupe  [decided]" in listed[0]
    assert secret not in loupe("list").output

    task = make_review_item(committed_db)
    decide(session=committed_db, task_id=task.id, user_id=make_user(committed_db).id,
           verdict="pass")  # fmt: skip
    first = committed_db.scalar(select(WebhookDelivery.id).order_by(WebhookDelivery.id))
    log = loupe("deliveries", "--limit", "5").output
    assert log.count("inspection.decided") == 2 and "pending" in log
    assert "will be sent again" in loupe("replay", str(first)).output
    assert loupe("replay", "999999").exit_code == 1

    endpoint_id = committed_db.scalar(select(WebhookEndpoint.id).order_by(WebhookEndpoint.id))
    assert "removed endpoint" in loupe("remove", str(endpoint_id)).output
    assert loupe("remove", str(endpoint_id)).exit_code == 1
    assert len(loupe("list").output.splitlines()) == 1
