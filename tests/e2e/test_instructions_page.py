"""The ML team reads the instruction data, excludes a bad sample and tunes the classifier
on the rest, in a real browser.

Verified garments (photos in the stack's store, decisions in effect; one frozen into the
test set) are built into an instruction snapshot. The ml user opens /ml/instructions,
sees the crops drawn, filters to failure analysis (htmx swaps the examples and the
address follows), and excludes a sample with a reason: the page then shows the new
snapshot without it. Then, on /ml/models, they start a tuning run on kinds A and D and
watch the whole stack (relay, the training worker, the tiny Qwen2.5-VL) tune, judge and
register the adapter while the runs block polls itself. Screenshots go to
tests/e2e/artifacts/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.instructions.manifest import BuildOptions
from app.instructions.service import build_snapshot
from app.instructions.snapshots import load_manifest
from app.instructions.tables import InstructionExclusion, InstructionSnapshot
from app.learning.tables import TrainingRun
from app.learning.testset import freeze_test_items
from app.registry.tables import ModelVersion
from app.storage import LocalStore
from models.training.synthetic import make_dataset
from tests.e2e.test_review_flow import ARTIFACTS, browser, logged_in  # noqa: F401 (fixture)
from tests.integration.learning_support import make_user, seed_many

pytestmark = pytest.mark.e2e


def test_the_ml_team_excludes_a_bad_sample(live_stack, browser):  # noqa: F811
    engine = create_engine(live_stack.database_url)
    with Session(engine) as session:
        store = LocalStore(live_stack.var_dir / "photos")
        seed_many(session, store, make_dataset(4, seed=55, size=96), make_user(session),
                  model_types=["stain", "stain", "stain"], false_alarm="stain")  # fmt: skip
        freeze_test_items(session=session, count=1)  # what the tuned classifier is judged on
        built = build_snapshot(session=session, store=store, settings=get_settings(),
                               options=BuildOptions())  # fmt: skip
        session.commit()
        first = built.snapshot.id

    page, errors = logged_in(browser, live_stack, "ml")
    page.wait_for_url("**/dashboard")
    page.locator("nav a[href='/ml/instructions']").click()
    page.wait_for_url("**/ml/instructions")
    # The dashboard test leaves the ml user reading Korean.
    page.locator("form.language-switch button[value=en]").click()
    page.wait_for_load_state()
    assert first[:12] in page.inner_text("#snapshots")
    crop = page.locator("img.crop").first
    expect(crop).to_be_visible()
    assert crop.evaluate("img => img.complete && img.naturalWidth > 0")

    page.locator("#filters select[name=kind]").select_option("D")
    expect(page).to_have_url(re.compile(r"kind=D"))
    rows = page.locator("#examples tbody tr[data-example]")
    expect(rows.first).to_have_attribute("data-example", re.compile(r":D\."))
    assert all(":D." in (rows.nth(i).get_attribute("data-example") or "")
               for i in range(rows.count()))  # fmt: skip
    page.screenshot(path=str(ARTIFACTS / "ml-instructions-en.png"), full_page=True)

    bad = rows.first
    example = bad.get_attribute("data-example")
    bad.locator("input[name=reason]").fill("the inspector's note is about another garment")
    bad.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/ml/instructions\?snapshot=(?!" + first + ")"))
    assert "1 example(s) excluded" in page.inner_text("p.notice")
    assert "kind=D" in page.url
    assert page.locator(f"#examples tr[data-example='{example}']").count() == 0
    assert f"{first[:12]} less 1 excluded example(s)" in page.inner_text("#snapshots")

    with Session(engine) as session:
        [record] = session.scalars(
            select(InstructionExclusion).where(InstructionExclusion.source_id == first)
        ).all()
        assert record.example_ids == [example] and record.result_id in page.url

    page.goto(f"{live_stack.base_url}/ml/models")
    form = page.locator("form#tune")
    for kind in ("B", "C"):
        form.locator(f"input[name=kinds][value={kind}]").uncheck()
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/ml/models")
    assert "Tuning run" in page.inner_text("p.notice") and "kinds A,D" in page.inner_text(
        "p.notice"
    )
    # The runs block asks for itself every 2 s while the run is active, with no reload.
    latest = page.locator("#runs tbody tr").first
    latest.filter(has_text="succeeded").wait_for(timeout=180_000)
    assert "LoRA on" in latest.inner_text() and "kinds A,D" in latest.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ml-models-tuned-en.png"), full_page=True)
    with Session(engine) as session:
        run = session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())).first()
        version = session.get(ModelVersion, run.model_version_id)
        assert run.candidate["tune"]["kinds"] == ["A", "D"] and version.adapter_uri
        assert version.metrics["evaluated_on"] == "frozen_test_crops"
        # The excluded example was not trained on: the run tuned on the snapshot without it.
        snapshot = session.get(InstructionSnapshot, run.candidate["tune"]["snapshot"])
        assert example not in {
            e["id"]
            for e in load_manifest(
                store=LocalStore(live_stack.var_dir / "photos"), snapshot=snapshot
            )["examples"]
        }
    engine.dispose()
    assert errors == []
