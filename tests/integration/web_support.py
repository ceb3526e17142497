"""The web app under test: built from fresh settings on the test's savepoint session, users
who log in through the form, and review items whose photos are in the object store.

A test that changes what the views read passes settings to make_app (`undo_seconds=2`): they
reach the views as an override of the settings dependency. LOUPE_* variables (`env=`) are
for what create_app reads once, as it builds the app: the secret key, the session cookie.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.auth.service import create_user
from app.auth.tables import User
from app.config import Settings
from app.db import get_session
from app.deps import request_settings
from app.review.tables import ReviewTask
from app.storage import get_store
from tests.integration.review_support import make_review_item
from tests.support import garment_photo, reset_caches

PASSWORD = "correct horse battery"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def make_app(db_session, tmp_path, monkeypatch):
    """Build the app from fresh settings; the routes share the test's savepoint session."""

    def build(env: dict[str, str] | None = None, **settings: Any) -> TestClient:
        monkeypatch.setenv("LOUPE_STORAGE_DIR", str(tmp_path / "photos"))
        monkeypatch.setenv("LOUPE_SECRET_KEY", "test-secret-key")
        monkeypatch.setenv("LOUPE_ENVIRONMENT", "development")
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        reset_caches()
        from app.web import create_app

        app = create_app()
        app.dependency_overrides[get_session] = lambda: db_session
        if settings:
            changed = Settings(**settings)
            app.dependency_overrides[request_settings] = lambda: changed
        return TestClient(app, follow_redirects=False)

    yield build
    reset_caches()


@pytest.fixture
def client(make_app):
    return make_app()


def add_user(
    db_session, role: str = "inspector", language: str = "en", name: str | None = None
) -> User:
    user = create_user(
        session=db_session,
        username=name or f"{role}-{language}",
        password=PASSWORD,
        role=role,
        language=language,
    )
    db_session.commit()
    return user


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def session_csrf(client: TestClient) -> str:
    """The session's CSRF token, from a page that changes nothing (the 404 page has the
    language switch form)."""
    return csrf_from(client.get("/no-such-page").text)


def log_in(client: TestClient, username: str, next_url: str = "/") -> str:
    """Log in through the form; returns the CSRF token of the new session."""
    token = csrf_from(client.get("/login").text)
    form = {"username": username, "password": PASSWORD, "next": next_url, "csrf_token": token}
    response = client.post("/login", data=form)
    assert response.status_code == 303, response.text
    return session_csrf(client)


def stored_item(db_session, **kwargs) -> ReviewTask:
    """A review item whose photo really is in the object store."""
    data = garment_photo()
    key = f"test/{kwargs.pop('name', 'photo')}.png"
    get_store().put(key, data, "image/png")
    return make_review_item(db_session, photo_key=key, **kwargs)
