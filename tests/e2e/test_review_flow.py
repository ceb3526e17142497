"""A station uploads a photo; an inspector decides it in a real browser; the decision is stored."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support import garment_photo, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests, but {CHROMIUM} is missing")
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` to run e2e tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def upload(stack, external_id: str) -> str:
    response = httpx.post(
        f"{stack.base_url}/api/v1/inspections",
        headers={"Authorization": f"Bearer {stack.station_token}"},
        files={"image": ("shirt.png", garment_photo(seed=7), "image/png")},
        data={"external_id": external_id},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["status_url"]


def routed(status_url: str, token: str) -> dict | None:
    body = httpx.get(status_url, headers={"Authorization": f"Bearer {token}"}).json()
    return body if body["status"] == "routed" else None


def test_inspector_decides_an_uploaded_item_in_the_browser(live_stack, browser):
    status_url = upload(live_stack, "RMA-E2E-1")
    item = wait_for(lambda: routed(status_url, live_stack.station_token), timeout=180, every=0.5)
    assert item["route"] == "review", item

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{live_stack.base_url}/review")
    assert "/login" in page.url  # not logged in yet
    page.fill("input[name=username]", "inspector")
    page.fill("input[name=password]", live_stack.password("inspector"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/review")

    item_section = page.locator("#review-item.review-item")
    item_section.wait_for()
    assert page.locator("svg rect").count() >= 1, "the model's boxes are drawn on the photo"
    photo_url = page.locator("svg.photo-frame image").get_attribute("href")
    photo = page.request.get(f"{live_stack.base_url}{photo_url}")  # with the session cookie
    assert photo.ok and photo.headers["content-type"] == "image/png"
    assert photo.body() == garment_photo(seed=7)
    assert page.get_by_text("Demo models", exact=False).count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-en.png"), full_page=True)

    # Mark the document: a full reload would lose the mark, an HTMX swap keeps it.
    page.evaluate("window.__noReload = true")
    page.locator("body").press("KeyR")  # reject, by keyboard
    page.locator("#review-item.queue-empty").wait_for(timeout=10_000)
    assert page.evaluate("window.__noReload") is True
    page.screenshot(path=str(ARTIFACTS / "review-empty-en.png"), full_page=True)

    engine = create_engine(live_stack.database_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT d.verdict, u.username, i.verdict, d.created_at FROM decision d "
                'JOIN "user" u ON u.id = d.user_id JOIN inspection i ON i.id = d.inspection_id '
                "WHERE i.external_id = 'RMA-E2E-1'"
            )
        ).one()
    engine.dispose()
    assert row[:3] == ("reject", "inspector", "reject")
    assert routed(status_url, live_stack.station_token)["verdict"] == "reject"
