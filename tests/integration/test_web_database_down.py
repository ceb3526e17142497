"""When the database cannot be reached, callers get 503 with Retry-After, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support import free_port, garment_photo, reset_caches

pytestmark = pytest.mark.integration


@pytest.fixture
def app_without_database(monkeypatch, tmp_path):
    # A port nobody listens on: every connection is refused, as while PostgreSQL restarts.
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/loupe"
    for name, value in {
        "LOUPE_DATABASE_URL": url, "LOUPE_SECRET_KEY": "test-secret-key",
        "LOUPE_STORAGE_DIR": str(tmp_path), "LOUPE_ENVIRONMENT": "development",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    reset_caches()
    from app.web import create_app

    yield TestClient(create_app(), follow_redirects=False, raise_server_exceptions=False)
    reset_caches()


def test_a_station_is_told_to_retry_and_a_page_says_why(app_without_database):
    client = app_without_database
    upload = client.post(
        "/api/v1/inspections",
        headers={"Authorization": "Bearer lst_anything", "Idempotency-Key": "k-1"},
        files={"image": ("a.png", garment_photo(), "image/png")},
    )
    assert upload.status_code == 503, upload.text
    assert upload.headers["Retry-After"] == "5"
    assert "retry" in upload.json()["detail"]

    client.cookies.clear()
    page = client.get("/login")  # needs no database
    assert page.status_code == 200
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    login = client.post("/login", data={"username": "a", "password": "b", "csrf_token": token})
    assert login.status_code == 503 and login.headers["Retry-After"] == "5"
    assert "cannot reach its database" in login.text
