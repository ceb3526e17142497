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
    binomial_cdf,
    escape_p_value,
    frontier,
    grid,
    hoeffding_bentkus,
    parse_bands,
    recommend,
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
    assert e.escape == Rate(None, None, None, labeled=7, audited=2, known=0, unchecked=2,
                            found=1, refused=e.escape.refused)  # fmt: skip
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


@pytest.mark.parametrize("n", [1, 7, 50, 400, 3000])
@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.1, 0.5])
def test_the_hoeffding_bentkus_p_value_is_mapies(n, alpha):
    """Learn then Test's p-value for a binary loss, against MAPIE 1.6's own."""
    import numpy as np
    from mapie.risk_control.methods import compute_hoeffding_bentkus_p_value

    for k in sorted({0, 1, n // 100, n // 10, n // 2, n}):
        ours = hoeffding_bentkus(k / n, n, alpha)
        theirs = compute_hoeffding_bentkus_p_value(np.array([k / n]), n, alpha, binary=True)
        assert ours == pytest.approx(float(theirs[0][0]), rel=1e-9, abs=1e-300), (k, n, alpha)


def test_the_binomial_cdf_sums_to_one_and_matches_a_small_case_by_hand():
    assert binomial_cdf(1, 3, 0.5) == pytest.approx(0.5)  # (1 + 3) / 8
    assert binomial_cdf(3, 3, 0.2) == 1.0 and binomial_cdf(-1, 3, 0.2) == 0.0
    assert binomial_cdf(0, 2000, 0.001) == pytest.approx(0.999**2000)


def band_history(seed: int, n: int = 4000, audit_rate: float = 0.1):  # type: ignore[no-untyped-def]
    """Items whose confidence says how likely they are defective; the band in force
    (0.95:0.70) sent the middle to people, audited a share of the rest."""
    import random

    rng = random.Random(seed)
    items = []
    for _ in range(n):
        confidence = rng.random()
        severity = rng.choice(["minor", "moderate"])
        # A minor stain (passed automatically above the band) is a real defect 2 % of the
        # time; below the band anything is, 1 % of the time.
        defective = rng.random() < (0.02 if confidence >= 0.70 else 0.01)
        truth = "reject" if defective else "pass"
        region = (RecordedRegion(0.9, confidence, "stain", severity),)
        if 0.70 <= confidence < 0.95:
            items.append(RecordedItem(region, "reviewed", truth))
        elif rng.random() < audit_rate:
            items.append(RecordedItem(region, "audited", truth))
        else:
            items.append(RecordedItem(region, "automatic", None))
    return items


def test_a_recommendation_is_the_least_human_work_among_the_bands_shown_safe():
    history = band_history(seed=1)
    estimates = replay(history, grid(), table=TABLE, detector_threshold=0.25, audit_rate=0.1,
                       min_support=30)  # fmt: skip
    loose = recommend(estimates, max_escape=0.05, confidence=0.9)
    assert loose.chosen is not None and loose.valid
    assert loose.chosen.human_share == min(e.human_share for e in loose.valid)
    for e in loose.valid:
        assert escape_p_value(e, 0.05) <= 0.1
    # Tighter: fewer bands can be shown safe, and the chosen one needs more people.
    tight = recommend(estimates, max_escape=0.005, confidence=0.9)
    assert len(tight.valid) <= len(loose.valid)
    if tight.chosen is not None:
        assert tight.chosen.human_share >= loose.chosen.human_share
    # Too little data shows nothing safe.
    few = replay(history[:40], grid(), table=TABLE, detector_threshold=0.25, audit_rate=0.1,
                 min_support=30)  # fmt: skip
    assert recommend(few, max_escape=0.005, confidence=0.9).chosen is None


def test_a_band_that_sends_everything_to_people_is_safe_and_one_over_the_bound_is_not():
    everything = estimate(Band(0.99, 0.70))  # all to people: no escape is possible
    assert escape_p_value(everything, 0.0) == 0.0
    narrow = estimate(Band(0.80, 0.75))  # a known escape in 11 items: 9 %
    assert escape_p_value(narrow, 0.05) == 1.0
