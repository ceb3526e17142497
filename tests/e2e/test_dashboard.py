"""The ML team opens the weekly dashboard in a real browser: charts drawn, no script errors.

Eight weeks of decisions are made through the review code (so each has its error cases),
then the ml user logs in and reads last week, follows a pattern to its examples, and
switches to Korean. Screenshots go to tests/e2e/artifacts/.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.orm import Session

from app.dashboard.weeks import Week
from app.db import utcnow
from app.feedback.tables import WeeklyReport
from app.storage import LocalStore
from tests.e2e.test_review_flow import ARTIFACTS, browser, logged_in  # noqa: F401 (fixture)
from tests.integration.feedback_support import seed_history
from tests.support import garment_photo, wait_for

pytestmark = pytest.mark.e2e


def test_the_ml_team_reads_the_weekly_dashboard(live_stack, browser):  # noqa: F811
    this_week = Week.of(utcnow(), "UTC")
    monday = this_week.monday()
    # Every seeded item shows the same real photo, so the examples page has crops to draw.
    # Its key is its sha256, the content hash the seeded rows record (as uploads are kept),
    # so the learning loop can read these crops back too.
    photo = garment_photo(size=(320, 240))
    photo_key = hashlib.sha256(photo).hexdigest()
    LocalStore(live_stack.var_dir / "photos").put(photo_key, photo, "image/png")
    engine = create_engine(live_stack.database_url)
    with Session(engine) as session:
        start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        seed_history(session, last_monday=start, weeks=8, photo_key=photo_key)
        # Beat stored the closed weeks, empty, when the stack started; the history above
        # is dated in those weeks, which real decisions never are. Let beat's snapshot
        # finish, then drop it, so the page computes the seeded weeks.
        stored = select(func.count()).select_from(WeeklyReport)
        wait_for(lambda: session.scalar(stored) >= 12 or None, timeout=120, every=0.5)
        session.execute(delete(WeeklyReport))
        session.commit()
    engine.dispose()

    page, errors = logged_in(browser, live_stack, "ml")
    page.wait_for_url("**/dashboard")  # the ml role lands on its dashboard
    last_week = str(this_week.shifted(-1))
    assert last_week in page.inner_text("h1")
    charts = page.locator(".chart-card svg")
    assert charts.count() == 5
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 40
    # The trend has a point for each of the eight seeded weeks.
    assert page.locator(".chart-card svg").first.locator("circle").count() >= 8
    page.screenshot(path=str(ARTIFACTS / "dashboard-en.png"), full_page=True)

    page.locator("a", has_text="Examples").first.click()
    page.wait_for_url("**/dashboard/patterns?**")
    assert page.locator(".gallery-item").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "dashboard-patterns-en.png"), full_page=True)

    page.goto(f"{live_stack.base_url}/dashboard")
    page.locator("form.language-switch button[value=ko]").click()
    page.wait_for_load_state()
    assert "주간 오류" in page.inner_text("h1")
    page.screenshot(path=str(ARTIFACTS / "dashboard-ko.png"), full_page=True)
    assert errors == []
