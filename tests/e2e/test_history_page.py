"""The ML team finds a garment by its external id and reads its history, in a real browser.

A station uploads a garment through the API; the whole stack (relay, worker, tiny models)
routes it to review. One inspector decides it, a lead sends it back, another inspector
decides it again (through the review code, as other people than the review test's
inspector). The ml user opens Inspections from the nav, searches by the external id (htmx
swaps the results and the address follows), and opens the inspection: its photo with the
models' boxes, the route and why, the model versions, both decisions in order with who,
and the timeline. Screenshots go to tests/e2e/artifacts/.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.review import decisions, reopen
from app.review.tables import ReviewTask
from tests.e2e.test_review_flow import ARTIFACTS, browser, logged_in, routed, upload  # noqa: F401
from tests.integration.review_support import make_user
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def test_the_ml_team_finds_an_inspection_and_reads_its_decisions(live_stack, browser):  # noqa: F811
    external_id = f"RMA-HIST-{uuid.uuid4().hex[:6]}"
    status_url = upload(live_stack, external_id, seed=77)
    item = wait_for(lambda: routed(status_url, live_stack.station_token), timeout=180, every=1.0)
    assert item["route"] == "review", item
    engine = create_engine(live_stack.database_url)
    with Session(engine) as session:
        task = session.scalar(select(ReviewTask).where(ReviewTask.inspection_id == item["id"]))
        assert task is not None
        # Not the review test's "inspector": its check counts that user's decisions.
        mina, joon = make_user(session, name="hist-mina"), make_user(session, name="hist-joon")
        lead = make_user(session, role="lead", name="hist-sora")
        # The tiny models' regions are random, maybe no defect among them: a reject says so.
        decisions.decide(session=session, task_id=task.id, user_id=mina.id, verdict="reject",
                         unmarked=True)  # fmt: skip
        reopen.send_back(session=session, task_id=task.id, actor_id=lead.id)
        decisions.decide(session=session, task_id=task.id, user_id=joon.id, verdict="pass")
    engine.dispose()

    page, errors = logged_in(browser, live_stack, "ml")
    page.wait_for_url("**/dashboard")
    page.locator("nav a[href='/inspections']").click()
    page.wait_for_url("**/inspections")
    page.locator("form.language-switch button[value=en]").click()  # others leave it in Korean
    page.wait_for_load_state()
    page.fill("#filters input[name=external_id]", external_id)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"external_id={external_id}"))
    rows = page.locator("#results tbody tr[data-inspection]")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-inspection") == item["id"]
    assert "2 decision(s), in effect: hist-joon" in rows.first.inner_text()
    # A choice in a list searches at once; the address keeps both filters.
    page.locator("#filters select[name=verdict]").select_option("reject")
    expect(page).to_have_url(re.compile(r"verdict=reject"))
    expect(rows).to_have_count(0)
    page.locator("#filters select[name=verdict]").select_option("pass")
    expect(page).to_have_url(re.compile(rf"external_id={external_id}&verdict=pass"))
    expect(rows).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "history-search-en.png"), full_page=True)

    rows.first.locator("a").first.click()
    page.wait_for_url(f"**/inspections/{item['id']}")
    photo = page.locator("svg.photo-frame image").first
    expect(photo).to_be_attached()
    assert page.request.get(f"{live_stack.base_url}{photo.get_attribute('href')}").ok
    assert page.locator("svg.photo-frame g.box").count() == len(item["regions"]) > 0
    assert "Human review" in page.inner_text("#route")
    assert item["detector_version"] in page.inner_text("#models")
    decided = page.locator("#decisions article.decision")
    expect(decided).to_have_count(2)
    assert decided.nth(0).get_attribute("data-state") == "superseded"
    assert "hist-mina" in decided.nth(0).inner_text() and "Reject" in decided.nth(0).inner_text()
    assert decided.nth(1).get_attribute("data-state") == "in_effect"
    assert "A re-review: replaces decision 1" in decided.nth(1).inner_text()
    timeline = page.inner_text("#timeline")
    assert "Sent back for a re-review" in timeline and "hist-sora" in timeline
    assert timeline.index("Decision 1") < timeline.index("Sent back") < timeline.index("Decision 2")
    page.screenshot(path=str(ARTIFACTS / "history-inspection-en.png"), full_page=True)
    assert errors == []
