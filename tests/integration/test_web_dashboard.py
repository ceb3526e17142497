"""The ML team's dashboard, the weekly report API and its CSV export, over HTTP."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import get_args

import pytest
from sqlalchemy import select

from app.dashboard.views import CsvTable
from app.inspections.tables import Region
from app.review import decisions
from tests.integration import web_support
from tests.integration.feedback_support import WEEK, at, seed_week
from tests.integration.review_support import make_review_item
from tests.integration.web_support import add_user, log_in

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture


@pytest.fixture
def ml_client(make_app, db_session):
    seed_week(db_session)
    add_user(db_session, role="ml")
    client = make_app(site_timezone="UTC")
    log_in(client, "ml-en")
    return client


def test_the_dashboard_draws_the_week(ml_client):
    response = ml_client.get(f"/dashboard?week={WEEK}")
    assert response.status_code == 200, response.text[:300]
    page = response.text
    svgs = [page[i : page.index("</svg>", i) + 6] for i in _find_all(page, "<svg")]
    assert len(svgs) >= 5  # two trends, routing mix, confusion matrix, per-class bars
    for svg in svgs:
        ET.fromstring(svg)  # each chart is well-formed on its own
    assert "Top error patterns" in page
    assert "Strengthen brightness augmentation" in page
    assert "kim" in page and "lee" in page
    assert "/dashboard/patterns?" in page and "kind=false_positive" in page


def test_the_dashboard_speaks_korean(make_app, db_session):
    seed_week(db_session)
    add_user(db_session, role="ml", language="ko")
    client = make_app(site_timezone="UTC")
    log_in(client, "ml-ko")
    page = client.get(f"/dashboard?week={WEEK}").text
    assert "주간 오류" in page and "밝기 증강 강화" in page


def test_the_weekly_report_api(ml_client):
    report = ml_client.get(f"/api/v1/reports/weekly?week={WEEK}").json()
    assert report["week"] == WEEK
    assert report["total_reviews"] == 7
    assert set(report["error_breakdown"]) == {
        "false_positive", "false_negative", "classification_error",
    }  # fmt: skip
    assert report["top_error_patterns"][0]["action"]


@pytest.mark.parametrize(
    ("week", "message"),
    [("2026-47", "is not an ISO week"), ("2026-W54", "has no week 54"),
     ("2099-W01", "has not started yet")],
)  # fmt: skip
def test_a_bad_week_is_a_clear_422(ml_client, week, message):
    response = ml_client.get(f"/api/v1/reports/weekly?week={week}")
    assert response.status_code == 422
    assert message in response.text


def test_the_report_needs_a_login(make_app):
    assert make_app().get("/api/v1/reports/weekly").status_code == 401


def test_csv_export(ml_client):
    response = ml_client.get(f"/api/v1/reports/weekly.csv?week={WEEK}&table=model_versions")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0]["detector_version"] == "det-test-1"
    assert rows[0]["errors.false_positive"] == "2"
    trend = ml_client.get(f"/api/v1/reports/weekly.csv?week={WEEK}&table=trend").text
    assert len(list(csv.DictReader(io.StringIO(trend)))) == 12
    assert ml_client.get("/api/v1/reports/weekly.csv?table=nope").status_code == 422


@pytest.mark.parametrize("table", get_args(CsvTable))
def test_every_csv_table_the_dashboard_offers_downloads(ml_client, table):
    """The dashboard links each of these; `patterns` was a KeyError (500) found by fuzzing."""
    response = ml_client.get(f"/api/v1/reports/weekly.csv?week={WEEK}&table={table}")
    assert response.status_code == 200, response.text[:200]
    assert list(csv.DictReader(io.StringIO(response.text)))


def test_csv_cells_never_run_as_formulas():
    from app.dashboard.views import _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _cell("@SUM") == "'@SUM" and _cell("kim") == "kim" and _cell(-1) == -1


def test_a_pattern_shows_its_examples_with_the_note_escaped(ml_client, db_session):
    task = make_review_item(db_session, created_at=at(20, 9))
    region = db_session.scalar(select(Region).where(Region.inspection_id == task.inspection_id))
    inspector = add_user(db_session, role="inspector", name="park")
    decisions.decide(
        session=db_session, task_id=task.id, user_id=inspector.id, verdict="pass",
        region_edits=[{"region": region.id, "not_defect": True}], tags=["shadow"],
        note="<script>alert(1)</script>", now=at(20, 10),
    )  # fmt: skip
    query = f"week={WEEK}&kind=false_positive&model=stain&human=normal&tag=shadow"
    response = ml_client.get(f"/dashboard/patterns?{query}")
    assert response.status_code == 200
    page = response.text
    assert page.count('class="gallery-item"') == 2  # T2 and park's
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="/photos/' in page
    untagged = ml_client.get(f"/dashboard/patterns?week={WEEK}&kind=false_positive&model=stain"
                             "&human=normal").text  # fmt: skip
    assert untagged.count('class="gallery-item"') == 1  # T7's, which had no tag
    assert ml_client.get(f"/dashboard/patterns?week={WEEK}&kind=bogus").status_code == 422


def test_inspectors_may_not_read_the_dashboard(make_app, db_session):
    add_user(db_session, role="inspector")
    client = make_app()
    log_in(client, "inspector-en")
    assert client.get("/dashboard").status_code == 403
    assert client.get("/api/v1/reports/weekly").status_code == 403


def _find_all(text: str, needle: str) -> list[int]:
    found, i = [], text.find(needle)
    while i != -1:
        found.append(i)
        i = text.find(needle, i + 1)
    return found


def test_the_models_against_an_imports_labels(ml_client, db_session):
    """Items imported with their labels (`loupe import --as inspect`) and routed by the
    models: the week's escapes, false rejects and boxes found, on the page and in the API."""
    assert "Models against imported labels" not in ml_client.get(f"/dashboard?week={WEEK}").text
    stain = {"photo": 0, "type": "stain", "severity": None, "box": [10.0, 20.0, 110.0, 90.0]}
    for route, labels in (
        ("auto_reject", {"split": "val", "label": None, "boxes": [stain]}),  # found
        ("auto_pass", {"split": "val", "label": None, "boxes": [{**stain, "type": "hole"}]}),
        ("auto_reject", {"split": "val", "label": "normal", "boxes": []}),  # a false reject
    ):
        task = make_review_item(db_session, defect_type="stain", created_at=at(18, 9))
        inspection = task.inspection
        inspection.route, inspection.routed_at = route, at(18, 9, 1)
        inspection.source, inspection.reference_labels = "import:site-2024", labels
    db_session.commit()

    reference = ml_client.get(f"/api/v1/reports/weekly?week={WEEK}").json()["reference"]
    assert reference["defective"] == {"items": 2, "auto_pass": 1, "auto_reject": 1, "review": 0}
    assert reference["clean"] == {"items": 1, "auto_pass": 0, "auto_reject": 1, "review": 0}
    assert [(r["type"], r["boxes"], r["found"], r["located"]) for r in reference["per_type"]] == [
        ("hole", 1, 0, 1),
        ("stain", 1, 1, 1),
    ]
    page = ml_client.get(f"/dashboard?week={WEEK}").text
    assert "Models against imported labels" in page
    assert "Of 2 the labels call defective, the models passed 1 (50" in page


def test_the_review_band_replayed_on_the_week(make_app, db_session):
    """The panel the dashboard loads after the page: the band in force and the field
    report's, on the week's items, with what is too thin to say refused (in Korean too)."""
    from tests.integration.test_thresholds_simulate import ROUTED, routed

    assert ROUTED.isocalendar()[:2] == (2026, 47)
    for confidence, verdict in ((0.80, "reject"), (0.85, "pass"), (0.72, "reject")):
        routed(db_session, "review", confidence, verdict)
    for _ in range(30):
        routed(db_session, "review", 0.97, "pass", is_audit=True)
    routed(db_session, "review", 0.97, "reject", is_audit=True, severity="minor")
    routed(db_session, "auto_reject", 0.97, "reject")
    db_session.commit()
    add_user(db_session, role="ml")
    add_user(db_session, role="ml", language="ko")
    client = make_app(site_timezone="UTC")
    log_in(client, "ml-en")

    page = client.get(f"/dashboard?week={WEEK}").text
    assert f'hx-get="/dashboard/bands?week={WEEK}"' in page
    panel = client.get(f"/dashboard/bands?week={WEEK}", headers={"HX-Request": "true"}).text
    assert panel.lstrip().startswith('<section class="card-wide" id="bands">')
    bands_table, curve = panel.split('id="band-curve"')
    rows = bands_table.split("<tr")[2:]
    assert [r.split('class="mono">')[1][:9] for r in rows] == [
        "0.95:0.70", "0.93:0.75", "0.90:0.80",
    ]  # fmt: skip
    assert "in force" in rows[0]
    # 35 decided items, 3 reviewed, 31 audits: at 0.95:0.70 the minor stain (1 audit)
    # passes, too little to say; it rejects 31 automatically, and the 30 audits among them
    # were all good items: 31 of 35 false rejects.
    assert "35 decided items: 3 reviewed inside the band in force, 31 audits" in panel
    assert "too little data" in rows[0] and "88.57 %" in rows[0] and "audits: 30" in rows[0]
    # The curve: only bands whose escapes need no audits here (they send every 0.97 to
    # people) can be drawn; 0.99:0.50 sends all to people and escapes nothing.
    assert "0.99:0.50" in curve and "0.95:0.70" not in curve
    whole = client.get(f"/dashboard/bands?week={WEEK}")
    assert "<html" in whole.text and "too little data" in whole.text  # without HTMX: a page

    korean = make_app(site_timezone="UTC")
    log_in(korean, "ml-ko")
    assert "데이터 부족" in korean.get(f"/dashboard/bands?week={WEEK}").text


def test_calibration_per_classifier_version_as_served_and_at_the_registrys_temperature(
    make_app, db_session
):
    """Ten answers at 0.9 confidence, eight the inspectors agreed with, served at T=1; the
    registry now holds T=2 for the version, which would state about 0.75 instead."""
    from app.dashboard.report import ReportOptions, weekly_report
    from app.dashboard.weeks import Week
    from app.registry.tables import ModelVersion
    from tests.integration.feedback_support import NOW
    from tests.integration.review_support import make_user

    distribution = {"stain": 0.9, "hole": 0.1}
    kim = make_user(db_session, name="kim")
    for i in range(10):
        task = make_review_item(
            db_session, created_at=at(18, 9), defect_type="stain",
            evidence={"type_probability": 0.9, "final_distribution": distribution},
        )  # fmt: skip
        [region] = task.inspection.regions
        edits = [] if i < 8 else [{"region": region.id, "type": "hole"}]
        decisions.decide(session=db_session, task_id=task.id, user_id=kim.id,
                         verdict="reject", region_edits=edits, now=at(18, 10))  # fmt: skip
    db_session.add(ModelVersion(kind="classifier", version="cls-test-1", uri="s3://x",
                                content_hash="0" * 64, metrics={"temperature": 2.0}))  # fmt: skip
    db_session.commit()

    report = weekly_report(session=db_session, week=Week.parse(WEEK),
                           options=ReportOptions("UTC", 3600, []), now=NOW)  # fmt: skip
    [entry] = report["calibration"]
    assert (entry["classifier_version"], entry["regions"]) == ("cls-test-1", 10)
    assert (entry["served_temperatures"], entry["registry_temperature"]) == ([1.0], 2.0)
    top = entry["bins_served"][9]
    assert (top["count"], top["agreement"]) == (10, pytest.approx(0.8))
    assert entry["error_served"] == pytest.approx(0.1)
    # At T=2, 0.9 vs 0.1 becomes 0.75 vs 0.25: the bin of 0.7-0.8, with an error of 0.05.
    assert entry["bins_at_registry"][7]["count"] == 10
    assert entry["error_at_registry"] == pytest.approx(0.05)

    add_user(db_session, role="ml")
    client = make_app(site_timezone="UTC")
    log_in(client, "ml-en")
    page = client.get(f"/dashboard?week={WEEK}").text
    assert "Calibration per classifier version" in page
    assert "Agreement by stated confidence · cls-test-1" in page
    assert "10 regions the inspectors judged. Expected calibration error 10.0 %" in page
