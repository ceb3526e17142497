"""The weekly report on a seeded week: every number checked against a hand count."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.config import get_settings
from app.dashboard.report import weekly_report
from app.dashboard.snapshots import report_for, report_options, snapshot_closed_weeks
from app.dashboard.weeks import Week
from app.feedback.tables import ErrorCase, WeeklyReport
from app.policy.metrics import wilson_interval
from app.review import decisions, reopen
from tests.integration.feedback_support import EXPECTED_PATTERNS, NOW, WEEK, at, seed_week

pytestmark = pytest.mark.integration


@pytest.fixture
def options(monkeypatch):
    monkeypatch.setenv("LOUPE_SITE_TIMEZONE", "UTC")
    monkeypatch.setenv("LOUPE_REVIEW_SLA_SECONDS", "3600")
    get_settings.cache_clear()
    yield report_options(get_settings())
    get_settings.cache_clear()


@pytest.fixture
def report(db_session, options):
    seed_week(db_session)
    return weekly_report(session=db_session, week=Week.parse(WEEK), options=options, now=NOW)


def test_the_field_reports_numbers(report):
    assert report["week"] == WEEK
    assert report["closed"] is True
    assert report["start"] == "2026-11-16T00:00:00+00:00"
    assert report["total_reviews"] == 7  # T1-T7; T8 was undone, T9 is the week before
    assert report["audited_reviews"] == 2
    assert report["ai_human_agreement"] == pytest.approx(4 / 7)  # T1, T3, T4, T6
    assert report["error_breakdown"] == {
        "false_positive": 2, "false_negative": 1, "classification_error": 2,
    }  # fmt: skip
    assert report["item_errors"] == {"false_positive": 2, "false_negative": 1}


def test_top_error_patterns_with_their_actions(report):
    got = [
        (p["pattern"], p["type"], p["model_label"], p["human_label"], p["field"], p["tag"],
         p["action"])
        for p in report["top_error_patterns"]
    ]  # fmt: skip
    assert got == EXPECTED_PATTERNS
    assert all(p["count"] == 1 for p in report["top_error_patterns"])


def test_per_class_precision_recall_and_the_confusion_matrix(report):
    assert report["confusion"] == {
        "model_labels": ["stain", "missed"],
        "human_labels": ["hole", "stain", "normal"],
        "counts": [[1, 4, 2], [1, 0, 0]],
    }
    by_class = {c["class"]: c for c in report["per_class"]}
    assert by_class["stain"] == {
        "class": "stain", "true_positive": 4, "false_positive": 3, "false_negative": 0,
        "precision": pytest.approx(4 / 7), "recall": 1.0,
    }  # fmt: skip
    assert by_class["hole"]["precision"] is None  # the model never said hole
    assert by_class["hole"]["recall"] == 0.0
    assert by_class["hole"]["false_negative"] == 2


def test_routing_mix_and_escape_rate(report):
    mix = report["routing_mix"]
    assert mix["counts"] == {"auto_pass": 6, "auto_reject": 2, "review": 7, "audit": 2}
    assert mix["total"] == 17
    assert mix["automatic_share"] == pytest.approx(10 / 17)
    assert mix["human_share"] == pytest.approx(7 / 17)
    escape = report["escape_rate"]
    assert (escape["audits"], escape["wrong"], escape["passed_defects"]) == (2, 1, 0)
    assert escape["wrong_rejects"] == 1
    assert escape["rate"] == 0.5
    assert escape["ci95"] == pytest.approx(list(wilson_interval(1, 2)))


def test_queue_health(report):
    queue = report["queue"]
    assert queue["at"] == "2026-11-23T00:00:00+00:00"
    assert (queue["backlog"], queue["open_past_due"]) == (2, 2)  # T8 (undone) and T10
    assert queue["wait_median_s"] == 3600
    assert queue["wait_p95_s"] == pytest.approx(3600 + 0.7 * 3600)
    assert queue["decided_late"] == 1  # T2


def test_per_inspector_and_per_model_version(report):
    assert report["inspectors"] == [
        {"user": "kim", "decisions": 4, "active_hours": 4, "per_active_hour": 1.0,
         "audits": 1, "audit_agreement": 1.0},
        {"user": "lee", "decisions": 3, "active_hours": 3, "per_active_hour": 1.0,
         "audits": 1, "audit_agreement": 0.0},
    ]  # fmt: skip
    first, second = report["model_versions"]
    assert first == {
        "detector_version": "det-test-1", "classifier_version": "cls-test-1",
        "prompt_version": "v-test", "inspections": 15, "automatic_share": pytest.approx(8 / 15),
        "reviews": 7, "agreement": pytest.approx(4 / 7),
        "errors": {"false_positive": 2, "false_negative": 1, "classification_error": 2},
    }  # fmt: skip
    assert second["detector_version"] == "det-test-2"
    assert (second["inspections"], second["automatic_share"], second["reviews"]) == (2, 1.0, 0)
    assert second["agreement"] is None


def test_error_cases_are_kept_for_undone_decisions_but_not_counted(db_session, report):
    # Region + item cases: T2 2, T3 1, T4 1, T5 2, T7 2, T9 2 (the week before), and the
    # 2 of T8's decision that was undone.
    assert db_session.scalar(select(func.count()).select_from(ErrorCase)) == 12


def test_a_re_review_replaces_the_decision_it_supersedes(db_session, options):
    seeded = seed_week(db_session)
    t3 = seeded.tasks["t3"]
    lead = reopen.send_back(session=db_session, task_id=t3.id, actor_id=seeded.kim)
    assert lead.decided_at is None
    decisions.decide(session=db_session, task_id=t3.id, user_id=seeded.kim, verdict="confirm",
                     now=at(21, 9))  # fmt: skip
    report = weekly_report(session=db_session, week=Week.parse(WEEK), options=options, now=NOW)
    assert report["total_reviews"] == 7
    assert report["error_breakdown"]["classification_error"] == 1  # T3's is superseded
    assert report["ai_human_agreement"] == pytest.approx(4 / 7)


def test_closed_weeks_are_stored_once_and_read_back(db_session, options):
    seed_week(db_session)
    written = snapshot_closed_weeks(session=db_session, options=options, now=NOW, weeks_back=3)
    assert written == ["2026-W45", "2026-W46", "2026-W47"]  # W48 (this week) is not closed
    assert snapshot_closed_weeks(session=db_session, options=options, now=NOW, weeks_back=3) == []
    stored = db_session.get(WeeklyReport, WEEK).report
    assert stored["total_reviews"] == 7
    # Later changes to the data do not rewrite the stored history.
    db_session.execute(WeeklyReport.__table__.update().values(report={**stored, "marker": 1}))
    again = report_for(session=db_session, week=Week.parse(WEEK), options=options, now=NOW)
    assert again["marker"] == 1
