"""/metrics on the web app: the counters move as stations upload and inspectors decide, and
only the addresses LOUPE_METRICS_ALLOW names may read them. (The whole stack's metrics and
log lines across processes: tests/e2e/test_trail_of_an_inspection.py.)"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.auth.service import create_station_token
from tests.integration import web_support
from tests.integration.web_support import add_user, log_in, stored_item
from tests.support import garment_photo

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture

SCRAPER = ("10.20.30.40", 41000)
HTMX = {"HX-Request": "true"}


def value(text: str, sample: str) -> float:
    """A sample's value in Prometheus text (0 when it is not there yet)."""
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_refuse_a_caller_outside_the_allowed_addresses(make_app):
    client = make_app()
    for caller in (SCRAPER, ("testclient", 50000)):
        response = TestClient(client.app, client=caller).get("/metrics")
        assert response.status_code == 403, caller
        assert response.json()["detail"].endswith("LOUPE_METRICS_ALLOW")
    # Loopback reads by default, with no session: the allow-list is the rule...
    local = TestClient(client.app, client=("127.0.0.1", 5000))
    assert local.get("/metrics").status_code == 200
    # ...for callers that reach the pod itself: through a proxy the address is the caller's
    # own claim (uvicorn --proxy-headers), so anything forwarded is refused.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        proxied = local.get("/metrics", headers={header: "127.0.0.1"})
        assert proxied.status_code == 403 and "proxy" in proxied.json()["detail"], header


def test_counters_move_with_uploads_and_decisions(make_app, db_session):
    app = make_app({"LOUPE_METRICS_ALLOW": "10.20.30.0/24"}).app
    scraper = TestClient(app, client=SCRAPER)
    before = scraper.get("/metrics")
    assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
    assert "loupe_queue_read_ok 1.0" in before.text
    assert 'loupe_review_queue_items{band="overdue"}' in before.text

    token = create_station_token(session=db_session, station="dock-9")
    station = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    for n in range(2):
        files = {"image": ("p.png", garment_photo(seed=n), "image/png")}
        sent = station.post(
            "/api/v1/inspections", files=files, headers={"X-Request-ID": f"cam-{n}"}
        )
        assert sent.status_code == 201 and sent.headers["x-request-id"] == f"cam-{n}"
    again = station.post("/api/v1/inspections", files=files, data={"external_id": "x"},
                         headers={"Idempotency-Key": "k"})  # fmt: skip
    assert again.status_code == 201
    assert station.post("/api/v1/inspections", files=files, data={"external_id": "x"},
                        headers={"Idempotency-Key": "k"}).status_code == 200  # fmt: skip

    first, second = stored_item(db_session, name="m1"), stored_item(db_session, name="m2")
    add_user(db_session)
    inspector = TestClient(app, follow_redirects=False)
    csrf = log_in(inspector, "inspector-en", next_url="/review")
    inspector.get("/review")
    headers = {**HTMX, "X-CSRF-Token": csrf}
    for task, verdict in ((first, "reject"), (second, "pass")):
        decided = inspector.post(f"/review/{task.id}/decision", data={"verdict": verdict},
                                 headers=headers)  # fmt: skip
        assert decided.status_code == 200 and "HX-Retarget" not in decided.headers

    after = scraper.get("/metrics").text
    created, duplicate = (f'loupe_uploads_total{{outcome="{o}"}}' for o in ("created", "duplicate"))
    assert value(after, created) == value(before.text, created) + 3
    assert value(after, duplicate) == value(before.text, duplicate) + 1
    for verdict in ("reject", "pass"):
        sample = f'loupe_decisions_total{{audit="false",rereview="false",verdict="{verdict}"}}'
        assert value(after, sample) == value(before.text, sample) + 1, sample
