"""Replaying the history under other bands (app.policy.thresholds), worked out by hand."""

from __future__ import annotations

import pytest

from app.policy.metrics import wilson_interval
from app.policy.routing import DecisionTable
from app.policy.thresholds import (
    Band,
    BandEstimate,
    Rate,
    RecordedItem,
    RecordedRegion,
    frontier,
    grid,
    parse_bands,
    replay,
)

TABLE = DecisionTable()  # minor passes, moderate and severe are rejected


def item(stratum, truth, confidence=0.97, severity="moderate"):  # type: ignore[no-untyped-def]
    region = RecordedRegion(0.9, confidence, "stain", severity)
    return RecordedItem((region,), stratum, truth)


# Three items the band in force sent to people, four audits and four unchecked automatic
# items, all seven automatic ones at 0.97.
HISTORY = [
    item("reviewed", "reject", 0.80),
    item("reviewed", "pass", 0.85),
    item("reviewed", "reject", 0.72),
    item("audited", "reject", severity="minor"),  # passed automatically: an escape
    item("audited", "reject"),
    item("audited", "pass"),  # rejected automatically: a false reject
    item("audited", "pass", severity="minor"),
    *[item("automatic", None) for _ in range(4)],
]


def estimate(band: Band, min_support: int = 2) -> BandEstimate:
    [result] = replay(HISTORY, [band], table=TABLE, detector_threshold=0.25, audit_rate=0.02,
                      min_support=min_support)  # fmt: skip
    return result


def test_the_band_in_force_takes_its_errors_from_the_audits_alone():
    e = estimate(Band(0.95, 0.70))
    assert (e.items, e.automatic, e.to_people) == (11, 8, 3)
    assert e.automatic_share == pytest.approx(8 / 11)
    assert e.human_share == pytest.approx((3 + 0.02 * 8) / 11)
    # It passes the two minor stains, both audited: 1 of 2 was a defect. 2 x 1/2, of 11.
    assert e.escape.value == pytest.approx(1 / 11)
    low, high = wilson_interval(1, 2) or (0, 1)
    assert e.escape.low == pytest.approx(2 * low / 11)
    assert e.escape.high == pytest.approx(2 * high / 11)
    assert (e.escape.labeled, e.escape.audited) == (7, 2)
    # It rejects six: 2 audited, 1 of them good. 6 x 1/2, of 11.
    assert e.false_reject.value == pytest.approx(3 / 11)


def test_a_narrower_band_adds_what_the_inspectors_saw_as_known_errors():
    e = estimate(Band(0.80, 0.75))
    assert (e.automatic, e.to_people) == (11, 0)
    # 0.72 falls below the new low and was a reject: a known escape, plus the audits' share.
    assert e.escape.value == pytest.approx((1 + 2 / 2) / 11)
    assert e.escape.low is not None and e.escape.low >= 1 / 11  # the census has no doubt
    # 0.85 would now be rejected automatically, and an inspector passed it.
    assert e.false_reject.value == pytest.approx((1 + 6 / 2) / 11)


def test_a_band_that_sends_the_automatic_items_to_people_has_no_doubt_about_them():
    e = estimate(Band(0.99, 0.70))
    assert e.automatic == 0
    assert (e.escape.value, e.escape.low, e.escape.high) == (0.0, 0.0, 0.0)


def test_a_figure_without_enough_behind_it_is_refused_saying_why():
    e = estimate(Band(0.95, 0.70), min_support=3)
    assert e.escape == Rate(None, None, None, 7, 2, e.escape.refused)
    assert e.escape.refused == (
        "2 audits stand for the 2 automatic items it would pass; at least 3 are needed"
    )
    assert estimate(Band(0.95, 0.70), min_support=12).escape.refused == (
        "11 decided items; at least 12 are needed"
    )


def test_an_item_without_regions_is_a_pass_and_a_failed_inference_always_a_human():
    clean = RecordedItem((), "audited", "reject")
    failed = RecordedItem(None, "reviewed", "reject")
    [e] = replay([clean, failed], [Band(0.99, 0.98)], table=TABLE, detector_threshold=0.25,
                 audit_rate=0.0, min_support=1)  # fmt: skip
    assert (e.automatic, e.to_people) == (1, 1)
    assert e.escape.value == pytest.approx(0.5)  # the clean one, an audit that found a defect


@pytest.mark.parametrize("text", ["0.7:0.95", "0.95", "high:low", "0.95:0.70,", "1.2:0.5"])
def test_a_band_that_is_not_one_is_refused_with_the_fix(text):
    with pytest.raises(ValueError, match="HIGH:LOW"):
        parse_bands(text)


def test_bands_parse_and_the_frontier_keeps_only_what_nothing_beats():
    assert parse_bands("0.95:0.70, 0.93:0.75") == [Band(0.95, 0.70), Band(0.93, 0.75)]
    assert all(b.low < b.high for b in grid()) and Band(0.95, 0.70) in grid()
    estimates = replay(HISTORY, grid(), table=TABLE, detector_threshold=0.25, audit_rate=0.02,
                       min_support=2)  # fmt: skip
    curve = frontier(estimates)
    shares = [e.human_share for e in curve]
    escapes = [e.escape.value for e in curve]
    assert shares == sorted(shares) and escapes == sorted(escapes, reverse=True)
    for e in estimates:  # every band is at or above the curve
        assert any(c.human_share <= e.human_share and c.escape.value <= e.escape.value
                   for c in curve)  # fmt: skip
