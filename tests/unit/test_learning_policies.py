"""The retraining trigger, the evaluation gate and the A/B analysis, with hand-computed cases."""

import math

import pytest

from app.policy.ab import AbRules, Estimate, ItemEvidence, analyse, difference_z, estimate
from app.policy.promotion import GateRules, gate
from app.policy.retrain import (
    DatasetRules,
    TriggerInput,
    TriggerRules,
    dataset_problems,
    should_retrain,
)

RULES = TriggerRules()


@pytest.mark.parametrize(
    ("data", "fires", "words"),
    [
        (TriggerInput(999, 100, 14), False, []),
        (TriggerInput(1000, 100, 0), True, ["1000 new verified samples"]),
        (TriggerInput(10, 100, 15), True, ["disagreement 15.0% of 100 reviews"]),
        (TriggerInput(10, 0, 0), False, []),  # no reviews: no rate, no trigger
        (TriggerInput(10, 100, 1, {"stain": 0.69}, {"stain": 20}), True, ["stain precision 0.69"]),
        (TriggerInput(10, 100, 1, {"stain": 0.10}, {"stain": 19}), False, []),  # too few
        (TriggerInput(10, 100, 1, {"stain": 0.70}, {"stain": 50}), False, []),
    ],
)
def test_trigger(data, fires, words):
    decision = should_retrain(data, RULES)
    assert decision.retrain is fires
    assert len(decision.reasons) == len(words)
    for reason, expected in zip(decision.reasons, words, strict=True):
        assert expected in reason


def test_every_fired_trigger_is_reported():
    decision = should_retrain(TriggerInput(5000, 10, 5, {"hole": 0.5}, {"hole": 30}), RULES)
    assert len(decision.reasons) == 3


def test_dataset_refusals_name_the_problem():
    rules = DatasetRules(min_samples=100, min_per_class=5)
    counts = {"stain": 80, "hole": 3}
    problems = dataset_problems(counts, 90, ["stain", "hole", "tear"], rules)
    assert problems == [
        "only 90 samples; at least 100 needed",
        "class hole has 3 examples; at least 5 needed",
        "class tear has no examples",
    ]
    assert dataset_problems({"stain": 5}, 100, ["stain"], rules) == []


def test_gate_passes_a_good_candidate_and_reports_every_check():
    result = gate(
        {"map50": 0.90, "precision": 0.85, "map50_95": 0.50, "recall": 0.80},
        {"map50": 0.91, "precision": 0.86, "map50_95": 0.50, "recall": 0.81},
        GateRules(),
    )
    assert result.passed
    assert len(result.reasons) == 6 and all(r.startswith("pass") for r in result.reasons)


@pytest.mark.parametrize(
    ("candidate", "champion", "failing"),
    [
        ({"map50": 0.84, "precision": 0.9}, None, "map50 0.8400 (minimum 0.85)"),
        ({"map50": 0.9, "precision": 0.79}, None, "precision 0.7900"),
        ({"map50": 0.9}, None, "precision missing"),
        # 0.03 worse than the champion is a regression even above the minimum
        ({"map50": 0.90, "precision": 0.9}, {"map50": 0.93}, "map50 0.9000 vs champion 0.9300"),
        ({"map50": 0.9, "precision": 0.9, "recall": 0.5}, {"recall": 0.6}, "recall 0.5000"),
    ],
)
def test_gate_failures(candidate, champion, failing):
    result = gate(candidate, champion, GateRules())
    assert not result.passed
    assert any(r.startswith("FAIL") and failing in r for r in result.reasons)


def test_regression_allows_exactly_the_tolerance():
    assert gate({"map50": 0.90, "precision": 0.9}, {"map50": 0.92}, GateRules()).passed


def _arm(agreed: int, total: int) -> Estimate:
    """An arm of `total` decided items with one unit each (a verdict), `agreed` of them."""
    return estimate([ItemEvidence(1, 1)] * agreed + [ItemEvidence(0, 1)] * (total - agreed))


def test_difference_z_by_hand_is_the_pooled_two_proportion_test_for_verdicts():
    # 80/100 vs 90/100: pooled 0.85, se = sqrt(.85*.15*(2/100)) = 0.050498
    z, p = difference_z(_arm(80, 100), _arm(90, 100))
    assert z == pytest.approx(0.10 / math.sqrt(0.85 * 0.15 * 0.02))
    assert z == pytest.approx(1.980295, abs=1e-5)
    assert p == pytest.approx(0.047675, abs=1e-5)
    assert difference_z(_arm(10, 10), _arm(20, 20)) == (0.0, 1.0)
    # All wrong against all right is evidence, though neither arm varies by itself.
    assert difference_z(_arm(0, 50), _arm(50, 50))[1] < 1e-6


def test_estimate_is_a_ratio_over_items_with_its_linearised_variance():
    items = [ItemEvidence(2, 3), ItemEvidence(0, 1), ItemEvidence(1, 1, weight=4.0)]
    e = estimate(items)
    # (2 + 0 + 4) / (3 + 1 + 4) = 0.75; residuals w * (a - 0.75 n): -0.25, -0.75, 1.0
    assert (e.agreed, e.total, e.items, e.rate) == (6.0, 8.0, 3, 0.75)
    assert e.variance(0.75) == pytest.approx((0.25**2 + 0.75**2 + 1.0**2) / 8**2)
    nothing = estimate([ItemEvidence(0, 0)])  # a clean garment, no box shown or drawn
    assert (nothing.rate, nothing.items, nothing.variance(0.5)) == (None, 1, 0.0)


AB = AbRules(alpha=0.05, min_samples_per_arm=100, duration_days=7)


@pytest.mark.parametrize(
    ("champion", "challenger", "days", "decision"),
    [
        (_arm(40, 50), _arm(45, 50), 1.0, "continue"),  # too few and too early
        (_arm(800, 1000), _arm(900, 1000), 1.0, "promote"),  # enough samples: stop early
        (_arm(900, 1000), _arm(800, 1000), 1.0, "rollback"),  # significantly worse
        (_arm(850, 1000), _arm(860, 1000), 2.0, "rollback"),  # not shown better
        (_arm(40, 50), _arm(49, 50), 7.0, "promote"),  # duration over: decide on what we have
        (_arm(40, 50), _arm(0, 0), 8.0, "rollback"),  # an arm without samples
        (_arm(100, 100), _arm(100, 100), 2.0, "rollback"),  # no spread: nothing shown
        (estimate([ItemEvidence(0, 0)] * 200), _arm(200, 200), 8.0, "rollback"),  # no boxes
    ],
)
def test_ab_decisions(champion, challenger, days, decision):
    assert analyse(champion, challenger, days, AB).decision == decision


def test_audits_weighed_up_can_overturn_what_the_reviewed_items_show():
    """Boxes on reviewed items 95 % right, but two of the four audits of its automatic
    passes (each standing for 50 items) found three defects it missed."""
    champion = estimate([ItemEvidence(8, 10)] * 150)
    reviewed = [ItemEvidence(19, 20)] * 150
    audits = [ItemEvidence(0, 3, weight=50.0), ItemEvidence(0, 0, weight=50.0)] * 2
    assert analyse(champion, estimate(reviewed), 2.0, AB).decision == "promote"
    assert analyse(champion, estimate(reviewed + audits), 2.0, AB).decision == "rollback"
