"""Every route of the app, crawled: each refuses an anonymous caller and a wrong role.

ACCESS is the table of who may call what. A route that is not in it fails the test, so a
new page cannot be added without deciding who may open it.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from app.auth.tables import ROLES
from tests.integration import web_support
from tests.integration.web_support import add_user, log_in, session_csrf

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture

PUBLIC = "public"  # anyone, logged in or not
STATION = "station"  # a station token, never a login session
ANY_USER = ROLES
REVIEWERS = ("inspector", "lead", "admin")
LEADS = ("lead", "admin")
ADMINS = ("admin",)
ML = ("ml", "admin")
HISTORY = ("lead", "ml", "admin")  # the inspection history pages

ACCESS: dict[tuple[str, str], str | tuple[str, ...]] = {
    ("GET", "/healthz"): PUBLIC,
    # No login, but only from LOUPE_METRICS_ALLOW's addresses (test_web_metrics.py).
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,  # ending a session needs none
    ("POST", "/language"): PUBLIC,  # the login page has the language switch
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("MOUNT", "/static"): PUBLIC,
    ("POST", "/api/v1/inspections"): STATION,
    ("GET", "/api/v1/inspections/{inspection_id}"): STATION,
    ("GET", "/api/v1/inspections"): STATION,
    ("GET", "/"): ANY_USER,
    ("GET", "/photos/{photo_id}"): ANY_USER,
    ("GET", "/review"): REVIEWERS,
    ("POST", "/review/{task_id}/decision"): REVIEWERS,
    ("POST", "/review/decisions/{decision_id}/undo"): REVIEWERS,
    ("POST", "/review/heartbeat"): REVIEWERS,
    ("GET", "/review/keys"): REVIEWERS,
    ("POST", "/review/keys"): REVIEWERS,
    ("POST", "/review/keys/reset"): REVIEWERS,
    ("GET", "/review/queue"): LEADS,
    ("POST", "/review/tasks/{task_id}/release"): LEADS,
    ("POST", "/review/tasks/{task_id}/send-back"): LEADS,
    ("GET", "/inspections"): HISTORY,
    ("GET", "/inspections/{inspection_id}"): HISTORY,
    ("GET", "/dashboard"): ML,
    ("GET", "/ml/models"): ML,
    ("POST", "/ml/retrain"): ML,
    ("POST", "/ml/models/promote"): ML,
    ("POST", "/ml/models/rollback"): ML,
    ("POST", "/ml/test-set/freeze"): ML,
    ("GET", "/ml/test-set/eligible"): ML,
    ("POST", "/ml/classifier/evaluate"): ML,
    ("POST", "/ml/classifier/tune"): ML,
    ("GET", "/ml/instructions"): ML,
    ("GET", "/ml/instructions/{snapshot_id}/crops/{crop_id}"): ML,
    ("POST", "/ml/instructions/exclude"): ML,
    ("POST", "/ml/bands/{band_id}/apply"): ML,
    ("POST", "/ml/bands/{band_id}/dismiss"): ML,
    ("POST", "/ml/bands/rollback"): ML,
    ("GET", "/ml/exports"): ML,
    ("POST", "/ml/exports"): ML,
    ("GET", "/ml/exports/{job_id}/download"): ML,
    ("GET", "/dashboard/patterns"): ML,
    ("GET", "/dashboard/bands"): ML,
    ("GET", "/api/v1/reports/weekly"): ML,
    ("GET", "/api/v1/reports/weekly.csv"): ML,
    ("GET", "/admin"): ADMINS,
    ("GET", "/admin/users"): ADMINS,
    ("POST", "/admin/users"): ADMINS,
    ("POST", "/admin/users/{user_id}/role"): ADMINS,
    ("POST", "/admin/users/{user_id}/active"): ADMINS,
    ("POST", "/admin/users/{user_id}/password"): ADMINS,
    ("POST", "/admin/logins/unlock"): ADMINS,
    ("GET", "/admin/tokens"): ADMINS,
    ("POST", "/admin/tokens"): ADMINS,
    ("POST", "/admin/tokens/{token_id}/revoke"): ADMINS,
    ("GET", "/admin/webhooks"): ADMINS,
    ("POST", "/admin/webhooks"): ADMINS,
    ("GET", "/admin/webhooks/{endpoint_id}"): ADMINS,
    ("POST", "/admin/webhooks/{endpoint_id}/remove"): ADMINS,
    ("POST", "/admin/webhooks/deliveries/{delivery_id}/replay"): ADMINS,
}


def app_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route, included routers flattened; HEAD goes with GET."""
    found: set[tuple[str, str]] = set()
    stack = list(app.routes)
    while stack:
        route = stack.pop()
        if hasattr(route, "effective_route_contexts"):  # FastAPI's included router
            stack.extend(route.effective_route_contexts())
        elif isinstance(route, Mount):
            found.add(("MOUNT", route.path))
        else:
            found |= {(m, route.path) for m in route.methods if m != "HEAD"}
    return found


def concrete(path: str) -> str:
    return (
        path.replace("{inspection_id}", str(uuid.uuid4()))
        .replace("{task_id}", "999999")
        .replace("{decision_id}", "999999")
        .replace("{user_id}", "999999")
        .replace("{token_id}", "999999")
        .replace("{endpoint_id}", "999999")
        .replace("{delivery_id}", "999999")
        .replace("{photo_id}", "999999")
        .replace("{snapshot_id}", "f" * 64)
        .replace("{crop_id}", "999999")
        .replace("{job_id}", "999999")
        .replace("{band_id}", "999999")
    )


def call(client: TestClient, method: str, path: str, csrf: str):
    # A valid CSRF token on every POST: the refusal must come from the login or role check.
    headers = {"X-CSRF-Token": csrf}
    return client.request(method, concrete(path), headers=headers)


def refused_as_anonymous(response, path: str) -> bool:
    if path.startswith("/api/"):
        return response.status_code == 401
    return response.status_code == 303 and response.headers["location"].startswith("/login")


PROTECTED = [(key, roles) for key, roles in ACCESS.items() if roles != PUBLIC]


def test_every_route_is_in_the_access_table(make_app):
    client = make_app()
    assert app_routes(client.app) == set(ACCESS)


@pytest.mark.parametrize(("key", "roles"), PROTECTED, ids=[f"{m} {p}" for (m, p), _ in PROTECTED])
def test_anonymous_callers_are_refused(make_app, key, roles):
    client = make_app()
    method, path = key
    response = call(client, method, path, session_csrf(client))
    assert refused_as_anonymous(response, path), (response.status_code, response.text[:200])


def test_each_role_gets_in_only_where_the_table_says(make_app, db_session):
    """Every role on every protected route: 403 (401 for the station API) where it is not
    allowed, and never a refusal where it is."""
    for role in ROLES:
        add_user(db_session, role=role)
    wrong, missing = [], []
    for role in ROLES:
        client = make_app()
        log_in(client, f"{role}-en")
        csrf = session_csrf(client)
        for (method, path), roles in PROTECTED:
            response = call(client, method, path, csrf)
            refused = response.status_code in (401, 403) or refused_as_anonymous(response, path)
            allowed = roles != STATION and role in roles
            if allowed and refused:
                missing.append((role, method, path, response.status_code))
            elif not allowed:
                expected = 401 if roles == STATION else 403
                if response.status_code != expected:
                    wrong.append((role, method, path, response.status_code))
    assert wrong == [], "routes that let in a role they should refuse"
    assert missing == [], "routes that refuse a role the table allows"


def test_public_routes_answer_without_a_login(make_app):
    client = make_app()
    public = ("/login", "/openapi.json", "/docs", "/redoc", "/static/app.css", "/static/review.css")
    for path in public:
        assert client.get(path).status_code == 200, path
