"""The ML team builds a YOLO export of what inspectors decided and downloads it, in a
real browser: the page queues the job, a worker of the running stack builds it while the
page polls, and the .zip holds data.yaml, the provenance file and the decided photo."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest
import yaml
from playwright.sync_api import expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.review import decisions
from app.review.tables import ReviewTask
from tests.e2e.test_review_flow import ARTIFACTS, browser, logged_in, routed, upload  # noqa: F401
from tests.integration.review_support import make_user
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def test_the_ml_team_exports_what_inspectors_decided(live_stack, browser):  # noqa: F811
    status_url = upload(live_stack, f"RMA-EXP-{uuid.uuid4().hex[:6]}", seed=91)
    item = wait_for(lambda: routed(status_url, live_stack.station_token), timeout=180, every=1.0)
    engine = create_engine(live_stack.database_url)
    with Session(engine) as session:
        task = session.scalar(select(ReviewTask).where(ReviewTask.inspection_id == item["id"]))
        if task is not None:  # routed to review (the tiny models' answers are random)
            nari = make_user(session, name="export-nari")
            decisions.decide(session=session, task_id=task.id, user_id=nari.id, verdict="pass")
    engine.dispose()

    page, errors = logged_in(browser, live_stack, "ml")
    page.wait_for_url("**/dashboard")
    page.locator("nav a[href='/ml/exports']").click()
    page.wait_for_url("**/ml/exports")
    page.locator("form.language-switch button[value=en]").click()
    page.wait_for_load_state()
    form = page.locator("#export-boxes form")
    form.locator("select[name=format]").select_option("yolo")
    form.locator("select[name=source]").select_option("now")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/ml/exports*")
    expect(page.locator("p.notice[role=status]")).to_contain_text("is queued")
    newest = page.locator("#export-jobs tbody tr").first
    # The table polls itself every 2 s while the job is queued or running.
    expect(newest).to_contain_text("ready", timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "exports-en.png"), full_page=True)

    with page.expect_download() as download:
        newest.locator("a[download]").click()
    archive = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
    names = archive.namelist()
    [data_yaml] = [n for n in names if n.endswith("/data.yaml")]
    assert "names" in yaml.safe_load(archive.read(data_yaml))
    assert any(n.endswith("/loupe-export.yaml") for n in names)
    assert any(n.endswith((".png", ".jpg")) for n in names), names
    assert errors == []
