"""The ML team tries a new prompt version from the models page, in a real browser.

Verified garments (photos in the stack's store, decisions in effect) give the crops. The
ml user chooses the site's prompt version and starts the evaluation; the whole stack
(relay, Celery worker, the tiny Qwen2.5-VL) runs it while the page's runs block polls
itself, until the run has succeeded and the version is listed with its prompts and gate.
Then a few items are frozen into the test set. Screenshots go to tests/e2e/artifacts/.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.learning.tables import TrainingRun
from app.registry.tables import ModelVersion
from app.storage import LocalStore
from models.training.synthetic import make_dataset
from tests.e2e.test_review_flow import ARTIFACTS, browser, logged_in  # noqa: F401 (fixture)
from tests.fixtures.stack import SITE_PROMPTS
from tests.integration.learning_support import make_user, seed_many

pytestmark = pytest.mark.e2e


def test_the_ml_team_evaluates_a_new_prompt_version(live_stack, browser):  # noqa: F811
    engine = create_engine(live_stack.database_url)
    with Session(engine) as session:
        store = LocalStore(live_stack.var_dir / "photos")
        seed_many(session, store, make_dataset(4, seed=77, size=96), make_user(session),
                  false_alarm="stain")  # fmt: skip
        session.commit()

    page, errors = logged_in(browser, live_stack, "ml")
    page.wait_for_url("**/dashboard")
    page.goto(f"{live_stack.base_url}/ml/models")
    # The dashboard test leaves the ml user reading Korean.
    page.locator("form.language-switch button[value=en]").click()
    page.wait_for_load_state()

    form = page.locator("form#candidate")
    form.locator("select[name=prompt_version]").select_option(SITE_PROMPTS)
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/ml/models")
    assert "is queued" in page.inner_text("p.notice")
    # The runs block asks for itself every 2 s while the run is active, with no reload.
    latest = page.locator("#runs tbody tr").first
    latest.filter(has_text="succeeded").wait_for(timeout=180_000)
    assert SITE_PROMPTS in latest.inner_text() and "passed" in latest.inner_text()
    page.reload()
    version = page.locator("tr", has_text=f"+{SITE_PROMPTS}.r").first
    assert "accuracy" in version.inner_text() and "human_agreement" in version.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ml-models-en.png"), full_page=True)

    with Session(engine) as session:
        run = session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())).first()
        assert run.kind == "classifier" and run.status == "succeeded"
        registered = session.get(ModelVersion, run.model_version_id)
        assert registered.prompt_version == SITE_PROMPTS and registered.gate["passed"]

    # The count of freezable items arrives after the page, by itself.
    page.locator("#test-set-eligible", has_text="verified items").wait_for(timeout=30_000)
    page.locator("#test-set input[name=count]").fill("2")
    page.locator("#test-set button[type=submit]").click()
    page.wait_for_url("**/ml/models")
    assert "added to the test set" in page.inner_text("p.notice")
    engine.dispose()
    assert errors == []
