"""Input that tests/integration/test_fuzz.py found reaching the database and coming back as a
500: each must be a 4xx that says what is wrong."""

from __future__ import annotations

import re

import pytest

from app.auth.service import create_station_token
from tests.integration import web_support
from tests.integration.test_web_routes import ACCESS
from tests.integration.web_support import add_user, log_in, session_csrf
from tests.support import garment_photo

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture

ID_ROUTES = sorted(
    key for key in ACCESS if re.search(r"\{\w+_id\}", key[1]) and "/api/" not in key[1]
)
# Every form field these routes need, so that only the id can be what is wrong.
FORM = {"verdict": "pass", "role": "inspector", "active": "true", "password": "long enough pw 1"}


@pytest.mark.parametrize("bad", [str(2**63), "0"])
def test_an_id_that_no_row_can_have_is_a_clear_400(make_app, db_session, bad):
    """Ids are BIGINT identities: 2**63 reached PostgreSQL and came back as a 500."""
    add_user(db_session, role="admin")
    client = make_app()
    log_in(client, "admin-en")
    headers = {"X-CSRF-Token": session_csrf(client)}
    assert ID_ROUTES, "no routes with an id in the path"
    for method, path in ID_ROUTES:
        url = re.sub(r"\{\w+_id\}", bad, path)
        response = client.request(
            method, url, headers=headers, data=FORM if method == "POST" else None
        )
        assert response.status_code == 400, (method, path, response.status_code)
        assert "not valid" in response.text, (method, path)


# PostgreSQL text cannot hold NUL: each of these reached a query and came back as a 500.
NUL_REQUESTS = [
    ("POST", "/admin/logins/unlock", {"key": "user:\x00"}),
    ("POST", "/admin/users", {"username": "a\x00b", "role": "inspector", "password": "x" * 12}),
    ("POST", "/admin/tokens", {"station": "dock\x00"}),
    ("GET", "/review/queue?q=%00", None),
    ("GET", "/dashboard/patterns?kind=false_positive&model=%00", None),
]


@pytest.mark.parametrize(("method", "url", "form"), NUL_REQUESTS, ids=[r[1] for r in NUL_REQUESTS])
def test_a_nul_character_in_a_page_is_a_clear_400(make_app, db_session, method, url, form):
    add_user(db_session, role="admin")
    client = make_app()
    log_in(client, "admin-en")
    headers = {"X-CSRF-Token": session_csrf(client)}
    response = client.request(method, url, headers=headers, data=form)
    assert response.status_code == 400
    assert "not valid" in response.text


def test_a_nul_character_at_login_is_a_clear_400(make_app):
    """The login throttle looked the name up before the password was checked."""
    client = make_app()
    form = {"username": "admin\x00", "password": "x", "csrf_token": session_csrf(client)}
    assert client.post("/login", data=form).status_code == 400


def test_a_nul_character_from_a_station_is_a_clear_400(make_app, db_session):
    token = create_station_token(session=db_session, station="dock-9")
    client = make_app()
    files = [("image", ("p.png", garment_photo(), "image/png"))]
    response = client.post("/api/v1/inspections", files=files, data={"external_id": "RMA\x00"},
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


# The dashboard shows the weeks before and after the one asked for: at the ends of the
# calendar those did not exist, and the date arithmetic failed (a 500).
@pytest.mark.parametrize("week", ["0001-W01", "9999-W52"])
def test_a_week_at_the_end_of_the_calendar_is_a_clear_422(make_app, db_session, week):
    add_user(db_session, role="ml")
    client = make_app()
    log_in(client, "ml-en")
    page = client.get(f"/dashboard?week={week}")
    assert page.status_code == 422
    assert "not valid" in page.text
    csv = client.get(f"/api/v1/reports/weekly.csv?week={week}&table=trend")
    assert csv.status_code == 422
    assert "outside the years" in csv.json()["detail"]


def test_a_method_a_route_does_not_take_is_a_405_that_says_which_it_does(make_app, db_session):
    """The HTML error page used to drop the Allow header that a 405 must carry."""
    add_user(db_session, role="inspector")
    client = make_app()
    log_in(client, "inspector-en")
    page = client.put("/review")
    assert (page.status_code, page.headers.get("allow")) == (405, "GET")
    assert page.headers["content-type"].startswith("text/html")
    api = client.delete("/api/v1/inspections")
    # Every method of the path: Starlette's own Allow named only the first route's (POST).
    assert (api.status_code, api.headers.get("allow")) == (405, "GET, POST")
    # The health check is the monitors' API: its errors are JSON too, not a page.
    health = client.post("/healthz")
    assert (health.status_code, health.headers.get("allow")) == (405, "GET")
    assert health.json() == {"detail": "Method Not Allowed"}


def test_a_health_part_that_does_not_exist_is_named_in_a_422(make_app):
    client = make_app()
    answer = client.get("/healthz", params={"part": "kitchen"})
    assert answer.status_code == 422
    assert "database" in str(answer.json()["detail"])  # it says which parts there are
