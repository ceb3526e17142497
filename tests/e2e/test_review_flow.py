"""An inspector works the queue in a real browser, by keyboard, in English and then Korean.

Stations upload twelve garments through the API; the whole stack (models, worker, relay)
routes them to review. The inspector logs in and decides ten of them with the keyboard
only — confirming the model, passing, rejecting, changing a region's type and severity,
marking one not a defect, drawing a missed defect with the mouse and typing it, tagging
with a note, and undoing — and the decisions are checked in the database. Screenshots of
the page in both languages go to tests/e2e/artifacts/.
"""

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
ITEMS = 11  # ten to decide in English, one for the Korean page


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


def logged_in(browser, stack, username: str):  # type: ignore[no-untyped-def]
    """A page signed in as `username`, and the list its script errors will go to."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{stack.base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", stack.password(username))
    page.keyboard.press("Enter")
    return page, errors


def upload(stack, external_id: str, seed: int) -> str:
    response = httpx.post(
        f"{stack.base_url}/api/v1/inspections",
        headers={"Authorization": f"Bearer {stack.station_token}"},
        files={"image": ("shirt.png", garment_photo(size=(480, 360), seed=seed), "image/png")},
        data={"external_id": external_id},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["status_url"]


def routed(status_url: str, token: str) -> dict | None:
    body = httpx.get(status_url, headers={"Authorization": f"Bearer {token}"}).json()
    return body if body["status"] == "routed" else None


def all_routed(urls: list[str], token: str) -> list[dict] | None:
    items = [routed(url, token) for url in urls]
    return items if all(items) else None


class Reviewer:
    """The page as the inspector sees it."""

    def __init__(self, page):
        self.page = page

    @property
    def task(self) -> str:
        return self.page.locator("#review-item").get_attribute("data-task-id") or ""

    def press(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)

    def decide(self, key: str) -> str:
        """Press a decision key; returns the decided task once the next one is on screen.

        The tiny models' regions are random: when none of them names a defect, a reject is
        questioned first ("which region is the defect?"), and pressed again it stands.
        """
        decided = self.task
        self.press(key)
        self.page.wait_for_function(
            "id => (document.querySelector('#review-item').dataset.taskId || '') !== id"
            " || document.querySelector('#review-item .hint.hint-warning')",
            arg=decided,
        )
        if self.task == decided:
            self.press(key)
            self.wait_for_next(decided)
        return decided

    def wait_for_next(self, decided: str) -> None:
        self.page.wait_for_function(
            "id => (document.querySelector('#review-item').dataset.taskId || '') !== id",
            arg=decided,
        )

    def region(self, n: int):
        return self.page.locator("li.region").nth(n)

    def first_region_is(self, attribute: str, value: str) -> bool:
        return self.region(0).get_attribute(f"data-{attribute}") == value


def test_an_inspector_reviews_ten_items_by_keyboard_in_two_languages(live_stack, browser):
    token = live_stack.station_token
    urls = [upload(live_stack, f"RMA-E2E-{i}", seed=i) for i in range(ITEMS)]
    # The worker infers them one after the other; one deadline for all of them.
    items = wait_for(lambda: all_routed(urls, token), timeout=180, every=1.0)
    assert all(item["route"] == "review" for item in items), items

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_stack.base_url}/review")
    assert "/login" in page.url
    # Typing before the form has its focus would send the name nowhere (a flaky 401).
    page.locator("input[name=username]:focus").wait_for()
    page.keyboard.type("inspector")
    page.keyboard.press("Tab")
    page.keyboard.type(live_stack.password("inspector"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/review")  # also matches /login?next=/review: the item tells
    page.locator("#review-item.review-item").wait_for()
    page.evaluate("window.__noReload = true")  # a full reload would lose it; HTMX swaps keep it
    r = Reviewer(page)
    photo_url = page.locator("svg.photo-frame image").first.get_attribute("href")
    assert page.request.get(f"{live_stack.base_url}{photo_url}").ok
    done: dict[str, str] = {}

    done["confirmed"] = r.decide("Space")
    done["passed"] = r.decide("KeyP")

    # Select region 1 and make it a tear (a stain if the model said tear already).
    new_type, key = ("stain", "Digit1") if r.first_region_is("type", "tear") else ("tear", "Digit2")
    r.press("ArrowDown", key)
    assert "changed" in r.region(0).inner_text().lower()
    done["retyped"] = r.decide("KeyR")

    new_severity, key = ("minor", "KeyQ") if r.first_region_is("severity", "severe") else (
        "severe", "KeyE")  # fmt: skip
    r.press("ArrowDown", key)
    done["severity"] = r.decide("KeyR")

    r.press("ArrowDown", "KeyN")  # not a defect
    done["not_defect"] = r.decide("KeyP")

    draw_box(page)
    r.press("Digit5", "KeyQ")  # a hole, minor
    assert "hole" in r.region(page.locator("li.region").count() - 1).inner_text().lower()
    frame = page.locator("svg.photo-frame").first.bounding_box()
    page.mouse.move(frame["x"] + frame["width"] * 0.4, frame["y"] + frame["height"] * 0.45)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-en.png"))
    done["drawn"] = r.decide("KeyR")

    r.press("Shift+Digit1", "Shift+Digit4", "KeyT")  # tags shadow and print, then the note
    page.keyboard.type("print, not a tear")
    r.press("Escape")
    done["tagged"] = r.decide("KeyP")

    undone = r.decide("KeyP")
    page.locator(".undo-bar").wait_for()
    page.keyboard.press("KeyU")
    page.wait_for_function("id => document.querySelector('#review-item').dataset.taskId === id",
                           arg=undone)  # fmt: skip
    done["undone"] = r.decide("KeyR")

    done["confirmed_again"] = r.decide("Space")
    done["last"] = r.decide("KeyR")
    assert page.evaluate("window.__noReload") is True
    assert errors == []
    check_decisions(live_stack.database_url, done, new_type, new_severity)

    # Korean: the language switch, then the same page speaks Korean throughout.
    page.locator('.language-switch button[value="ko"]').click()
    page.locator("#review-item.review-item").wait_for()
    assert page.locator("html").get_attribute("lang") == "ko"
    panel = page.locator(".review-panel").inner_text()
    for korean in ("통과", "불합격", "모델이 틀린 이유", "오늘", "검출 영역"):
        assert korean in panel, korean
    buttons = page.locator(".verdicts").inner_text()
    assert "Reject" not in buttons and "Pass" not in buttons
    assert "결함 아님" in page.locator(".tools").inner_text()
    page.mouse.move(1, 1)
    page.screenshot(path=str(ARTIFACTS / "review-ko.png"))
    assert r.decide("KeyP")  # the keys work the same with the Korean page


def check_decisions(database_url: str, done: dict[str, str], new_type: str, severity: str) -> None:
    """Each step left the ground truth it should have, and only that."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.review_task_id, d.verdict, d.model_verdict, d.tags, d.note, "
                "d.detector_version, u.username, i.verdict, "
                "(SELECT count(*) FROM decision_undo x WHERE x.decision_id = d.id), "
                "coalesce((SELECT array_agg(r.outcome || ':' || r.defect_type || ':' || "
                "coalesce(r.severity, '-') ORDER BY r.id) FROM decision_region r "
                "WHERE r.decision_id = d.id), '{}') "
                'FROM decision d JOIN "user" u ON u.id = d.user_id '
                "JOIN inspection i ON i.id = d.inspection_id "
                # Other tests on this stack decide as other users (the dashboard's).
                "WHERE u.username = 'inspector' ORDER BY d.id"
            )
        ).all()
    engine.dispose()
    by_task: dict[str, list] = {}
    for row in rows:
        by_task.setdefault(str(row[0]), []).append(row)
    assert {str(t) for t in by_task} == set(done.values())
    assert all(row[6] == "inspector" and row[5] for row in rows)

    def only(step: str):
        [row] = by_task[done[step]]
        assert row[8] == 0 and row[7] == row[1], "the item's verdict follows the decision"
        return row

    confirmed = only("confirmed")
    assert confirmed[1] == confirmed[2] and all(o.startswith("confirmed:") for o in confirmed[9])
    assert only("passed")[1] == "pass"
    assert any(o.startswith(f"changed:{new_type}:") for o in only("retyped")[9])
    assert any(o.startswith("changed:") and o.endswith(f":{severity}") for o in only("severity")[9])
    assert "not_defect:normal:-" in only("not_defect")[9]
    assert "added:hole:minor" in only("drawn")[9]
    tagged = only("tagged")
    assert (tagged[3], tagged[4]) == (["shadow", "print"], "print, not a tear")
    first, second = by_task[done["undone"]]  # passed, undone, then rejected
    assert (first[1], first[8]) == ("pass", 1)
    assert (second[1], second[8], second[7]) == ("reject", 0, "reject")


def test_a_correction_survives_space_and_a_reject_says_where_the_defect_is(live_stack, browser):
    """Two habits that lost ground truth: Space after a correction stored "the model is
    right", and a reject that contradicted every region taught the detector nothing."""
    token = live_stack.station_token
    urls = [upload(live_stack, f"RMA-E2E-SPACE-{i}", seed=100 + i) for i in range(2)]
    wait_for(lambda: all_routed(urls, token), timeout=180, every=1.0)
    page, errors = logged_in(browser, live_stack, "inspector")
    page.wait_for_url("**/review")  # the inspector role lands on the queue
    page.locator("#review-item.review-item").wait_for()
    r = Reviewer(page)
    confirm = page.locator('button[data-action="confirm"]')
    # The first test left this inspector on Korean: the page's own messages, in its language.
    says = page.evaluate("JSON.parse(document.getElementById('review-config').dataset.messages)")

    # A severe hole instead of what the model said, then Space out of habit.
    if page.locator("li.region").count():
        r.press("ArrowDown", "Digit2" if r.first_region_is("type", "hole") else "Digit5")
    else:
        draw_box(page)
        r.press("Digit5")
    r.press("KeyE")
    assert page.locator("li.region.changed, li.region.added").count() == 1
    # The big button says what the key will now do, before it is pressed.
    assert confirm.inner_text().startswith(says["corrected_reject"])
    assert "corrected" in (confirm.get_attribute("class") or "")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-corrected.png"))
    corrected = r.decide("Space")

    # Every region "not a defect", then reject: asked where the defect is, nothing saved yet.
    for n in range(page.locator("li.region").count()):
        r.region(n).click()
        r.press("KeyN")
    unmarked = r.task
    r.press("KeyR")
    warning = page.locator("#review-item .hint.hint-warning")
    warning.wait_for()
    assert warning.inner_text() == says["reject_unmarked"]
    assert r.task == unmarked
    r.press("KeyR")  # the inspector insists: no region to mark (a smell, a missing part)
    r.wait_for_next(unmarked)
    assert errors == []

    engine = create_engine(live_stack.database_url)
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                text(
                    "SELECT d.review_task_id::text, d.verdict || ' ' || coalesce((SELECT "
                    "string_agg(r.outcome || ':' || r.defect_type || ':' || "
                    "coalesce(r.severity, '-'), ' ' ORDER BY r.id) FROM decision_region r "
                    "WHERE r.decision_id = d.id), '') FROM decision d "
                    "WHERE d.review_task_id IN (:a, :b)"
                ),
                {"a": int(corrected), "b": int(unmarked)},
            ).all()
        )
    engine.dispose()
    assert rows[corrected].startswith("reject ")
    assert ":hole:severe" in rows[corrected] or ":tear:severe" in rows[corrected]
    assert "confirmed" not in rows[corrected].split()[1]
    verdict, *answers = rows[unmarked].split()
    assert verdict == "reject" and all(a.startswith("not_defect:") for a in answers)


def draw_box(page) -> None:  # type: ignore[no-untyped-def]
    frame = page.locator("svg.photo-frame").first.bounding_box()
    page.mouse.move(frame["x"] + frame["width"] * 0.55, frame["y"] + frame["height"] * 0.55)
    page.mouse.down()
    page.mouse.move(frame["x"] + frame["width"] * 0.75, frame["y"] + frame["height"] * 0.8, steps=6)
    page.mouse.up()
