"""Evidence on the review page is read defensively, whatever shape it was stored in."""

from __future__ import annotations

import pytest

from app.i18n import duration, translator
from app.review.presenters import ExceptionCheck, alternatives, exception_checks


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        (42, []),
        ({"shadow_or_lighting": 0.12}, [ExceptionCheck("shadow_or_lighting", 0.12, "")]),
        (
            [{"key": "removable_lint", "probability": 0.91, "threshold": 0.8}],
            [ExceptionCheck("removable_lint", 0.91, "", fired=True)],
        ),
        (
            {"intentional_design": {"p": 0.3, "answer": "no", "threshold": 0.8}},
            [ExceptionCheck("intentional_design", 0.3, "no", fired=False)],
        ),
        (  # as app.inspections.results stores it: "fired" said outright wins
            [{"key": "shadow_or_lighting", "probability": 0.5, "threshold": 0.8, "fired": True}],
            [ExceptionCheck("shadow_or_lighting", 0.5, "", fired=True)],
        ),
        ({"shadow": True}, [ExceptionCheck("shadow", None, "yes")]),
        ({"shadow": 7.5}, [ExceptionCheck("shadow", None, "7.5")]),  # not a probability
        ("looks like a shadow", [ExceptionCheck("", None, "looks like a shadow")]),
        (["free text", {"no": "name"}], [ExceptionCheck("", None, "free text")]),
    ],
)
def test_exception_evidence_in_any_shape(raw, expected):
    assert exception_checks(raw) == expected


def test_long_or_many_evidence_items_are_cut_short():
    many = {f"check_{i}": "x" * 1000 for i in range(20)}
    checks = exception_checks(many)
    assert len(checks) == 8 and all(len(c.detail) == 300 for c in checks)


def test_alternatives_are_the_next_likely_types():
    dist = {"stain": 0.6, "tear": 0.25, "hole": 0.1, "snag": 0.04, "bad": "x", "nan": float("nan")}
    assert alternatives(dist, "stain") == [("tear", 25), ("hole", 10)]
    assert alternatives("junk", "stain") == []


def test_durations_read_naturally_in_both_languages():
    en, ko = translator("en"), translator("ko")
    assert duration(42, en) == "42 s"
    assert duration(-12 * 60, en) == "12 min"
    assert duration(3 * 3600 + 5 * 60, en) == "3 h 05 min"
    assert duration(3 * 3600 + 5 * 60, ko) == "3시간 05분"
