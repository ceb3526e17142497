"""Error patterns and their suggested actions, ISO weeks, weighted per-class counts, KPIs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.dashboard.presenters import kpis
from app.dashboard.weeks import BadWeek, Week
from app.policy.metrics import ClassCounts, per_class_counts, per_class_from_matrix
from app.policy.patterns import FALLBACK_ACTION, Pattern, parse_rules, suggest_action

RULES = parse_rules(
    """[
  {"kind": "false_positive", "tags": ["shadow", "lighting"], "action": "brightness"},
  {"kind": "false_positive", "action": "negatives"},
  {"kind": "classification_error", "field": "severity", "action": "severity"},
  {"model_label": "hole", "action": "holes"}
]"""
)


@pytest.mark.parametrize(
    ("pattern", "action"),
    [
        (Pattern("false_positive", "stain", "normal", None, "shadow"), "brightness"),
        (Pattern("false_positive", "stain", "normal", None, "lighting"), "brightness"),
        (Pattern("false_positive", "stain", "normal", None, "print"), "negatives"),
        (Pattern("false_positive", "stain", "normal", None, None), "negatives"),
        (Pattern("classification_error", "stain", "stain", "severity"), "severity"),
        (Pattern("classification_error", "hole", "tear", "type"), "holes"),
        (Pattern("false_negative", None, "tear"), FALLBACK_ACTION),
    ],
)
def test_the_first_matching_rule_suggests_the_action(pattern, action):
    assert suggest_action(pattern, RULES) == action


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"action": "x"}', "JSON list"),
        ('[{"kind": "false_positive"}]', "'action' string"),
        ('[{"action": "x", "colour": "red"}]', "unknown keys: colour"),
        ('[{"action": "x", "tags": "shadow"}]', "list of strings"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse_rules(text)


def test_pattern_titles():
    assert Pattern("false_positive", "stain", "normal", None, "shadow").title() == (
        "false_positive · stain → normal · tag shadow"
    )
    assert Pattern("false_negative", None, "hole").title() == "false_negative · missed → hole"
    assert Pattern("classification_error", "stain", "stain", "severity").title() == (
        "classification_error · stain severity"
    )


def test_iso_weeks_in_the_site_zone():
    week = Week.parse("2026-W47")
    assert str(week) == "2026-W47" and week.monday().isoformat() == "2026-11-16"
    start, end = week.bounds("Asia/Seoul")
    assert start.isoformat() == "2026-11-16T00:00:00+09:00"
    assert (end - start).days == 7
    # Sunday 20:00 UTC is already Monday in Seoul: the next week there.
    sunday_night = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    assert Week.of(sunday_night, "UTC") == week
    assert Week.of(sunday_night, "Asia/Seoul") == Week(2026, 48)
    assert Week.parse("2026-W01").shifted(-1) == Week(2025, 52)
    assert Week.parse("2020-W53").shifted(1) == Week(2021, 1)
    assert week.is_closed(end, "Asia/Seoul") and not week.is_closed(start, "Asia/Seoul")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-47", "ISO week"),
        ("2025-W53", "no week"),
        ("0001-W01", "years"),
        ("9999-W52", "years"),
    ],
)
def test_bad_weeks(text, message):
    with pytest.raises(BadWeek, match=message):
        Week.parse(text)


def test_per_class_from_a_matrix_equals_counting_pairs():
    pairs = (
        [("stain", "stain")] * 3 + [("stain", "normal")] * 2 + [(None, "hole"), ("hole", "tear")]
    )
    matrix = {("stain", "stain"): 3, ("stain", "normal"): 2, (None, "hole"): 1, ("hole", "tear"): 1}
    assert per_class_from_matrix(matrix) == per_class_counts(pairs)
    assert per_class_from_matrix(matrix)["stain"] == ClassCounts(3, 2, 0)
    assert per_class_from_matrix(matrix)["hole"] == ClassCounts(0, 1, 1)


def _report(reviews, agreement, escape, fp):
    return {
        "total_reviews": reviews,
        "ai_human_agreement": agreement,
        "escape_rate": {"rate": escape},
        "routing_mix": {"automatic_share": 0.7},
        "error_breakdown": {"false_positive": fp, "false_negative": 0, "classification_error": 0},
        "queue": {"backlog": 3},
    }


def test_kpis_show_the_change_and_whether_it_is_good_news():
    cards = {k.key: k for k in kpis(_report(120, 0.9, 0.01, 4), _report(100, 0.85, 0.02, 6))}
    assert (cards["total_reviews"].value, cards["total_reviews"].change) == ("120", "+20")
    assert cards["agreement"].change == "+5.0 pp" and cards["agreement"].better is True
    assert cards["escape_rate"].change == "−1.0 pp" and cards["escape_rate"].better is True
    assert cards["false_positive"].change == "−2" and cards["false_positive"].better is True
    assert cards["backlog"].better is None  # unchanged
    first = {k.key: k for k in kpis(_report(5, None, None, 0), None)}
    assert first["agreement"].value == "–" and first["agreement"].change == ""
