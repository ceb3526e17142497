"""Queue order with aging: lower confidence, higher severity, older, and waiting raises priority."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.review.priority import (
    audit_queue_confidence,
    band,
    effective_points,
    priority_key,
)

SLA = 4 * 3600
STEP = SLA // 100  # one aging point at weight 1: 144 s
T0 = datetime.fromtimestamp(1_800_000_000 // STEP * STEP, UTC)  # on a step boundary


def key(confidence: float, created_at: datetime = T0, weight: float = 1.0) -> int:
    return priority_key(
        confidence=confidence, created_at=created_at, sla_seconds=SLA, aging_weight=weight
    )


def order(items: dict[str, tuple[float, int, datetime]]) -> list[str]:
    """Names in claim order: (priority_key, severity desc, created_at), as the index sorts."""
    keyed = {name: (key(c, at), -sev, at) for name, (c, sev, at) in items.items()}
    return sorted(keyed, key=keyed.__getitem__)


def test_at_equal_age_lower_confidence_then_higher_severity_then_older():
    items = {
        "sure": (0.90, 3, T0),
        "minor": (0.75, 1, T0),
        "severe_newer": (0.75, 3, T0 + timedelta(seconds=60)),  # same aging step
        "severe_older": (0.75, 3, T0),
        "failed": (0.0, 0, T0),
    }
    assert order(items) == ["failed", "severe_older", "severe_newer", "minor", "sure"]


def test_waiting_counts_against_confidence_one_point_per_hundredth_of_the_sla():
    fresh = T0 + timedelta(hours=1)  # a quarter of the SLA later: 25 points of aging
    assert key(0.90, T0) - key(0.90, fresh) == -25
    # 0.90 that has waited an hour goes ahead of a fresh 0.70 (90 - 25 = 65 < 70) ...
    assert order({"old": (0.90, 1, T0), "fresh": (0.70, 1, fresh)}) == ["old", "fresh"]
    # ... but not of a fresh 0.60.
    assert order({"old": (0.90, 1, T0), "fresh": (0.60, 1, fresh)}) == ["fresh", "old"]


def test_an_item_at_its_sla_goes_ahead_of_anything_fresh():
    due = T0 + timedelta(seconds=SLA)
    assert order({"waited": (0.95, 0, T0), "failed_now": (0.0, 3, due)}) == [
        "waited",
        "failed_now",
    ]


def test_effective_points_fall_as_time_passes_and_weight_scales_aging():
    k = key(0.80)
    assert effective_points(key=k, now=T0, sla_seconds=SLA, aging_weight=1.0) == 80
    later = T0 + timedelta(seconds=SLA / 2)
    assert effective_points(key=k, now=later, sla_seconds=SLA, aging_weight=1.0) == 30
    no_aging = key(0.80, weight=0.0)
    assert effective_points(key=no_aging, now=later, sla_seconds=SLA, aging_weight=0.0) == 80


def test_audits_wait_in_the_middle_of_the_review_band():
    assert audit_queue_confidence(low=0.70, high=0.95) == pytest.approx(0.825)


@pytest.mark.parametrize(
    ("effective", "overdue", "expected"),
    [(90, False, "normal"), (82, False, "normal"), (81, False, "high"), (70, False, "high"),
     (69, False, "urgent"), (-5, False, "urgent"), (95, True, "overdue")],
)  # fmt: skip
def test_bands_follow_the_thresholds(effective, overdue, expected):
    assert band(effective=effective, overdue=overdue, low=0.70, high=0.95) == expected
