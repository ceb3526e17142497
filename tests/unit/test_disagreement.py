"""Disagreement classification and the rates built on it, table-tested with hand-computed values."""

import pytest

from app.policy.disagreement import ErrorCase, HumanRegion, ModelRegion, classify, iou
from app.policy.metrics import ClassCounts, per_class_counts, wilson_interval

STAIN = ModelRegion(
    region_id=1, photo_id=10, box=(0, 0, 100, 100), defect_type="stain", severity="moderate"
)
HOLE = ModelRegion(
    region_id=2, photo_id=10, box=(200, 200, 300, 300), defect_type="hole", severity="severe"
)
CLEARED = ModelRegion(
    region_id=3, photo_id=11, box=(0, 0, 50, 50), defect_type="normal", severity="minor"
)  # step 2 said: a shadow


def judged(m: ModelRegion, dtype: str, severity: str | None = None) -> HumanRegion:
    return HumanRegion(m.photo_id, m.box, dtype, severity or m.severity, region_id=m.region_id)


def drawn(photo: int, box, dtype: str, severity: str = "minor") -> HumanRegion:
    return HumanRegion(photo, box, dtype, severity)


@pytest.mark.parametrize(
    ("model", "human", "expected"),
    [
        # agreement: nothing to report
        ([STAIN], [judged(STAIN, "stain")], []),
        ([CLEARED], [judged(CLEARED, "normal")], []),
        # the human says it is not a defect: false positive
        (
            [STAIN],
            [judged(STAIN, "normal")],
            [ErrorCase("false_positive", "region", 1, 10, None, "stain", "normal")],
        ),
        # the model cleared it (step 2), the human keeps it: false negative
        (
            [CLEARED],
            [judged(CLEARED, "stain")],
            [ErrorCase("false_negative", "region", 3, 11, None, "normal", "stain")],
        ),
        # right region, wrong type / wrong severity: classification errors with from and to
        (
            [STAIN],
            [judged(STAIN, "discoloration")],
            [ErrorCase("classification_error", "region", 1, 10, "type", "stain", "discoloration")],
        ),
        (
            [HOLE],
            [judged(HOLE, "hole", "minor")],
            [ErrorCase("classification_error", "region", 2, 10, "severity", "severe", "minor")],
        ),
        # a box the model missed entirely: false negative
        (
            [STAIN],
            [judged(STAIN, "stain"), drawn(10, (400, 400, 450, 450), "tear")],
            [ErrorCase("false_negative", "region", None, 10, None, None, "tear")],
        ),
        # a drawn box over a model region counts as judging it (IoU 0.81 >= 0.5)
        (
            [STAIN],
            [drawn(10, (0, 0, 90, 90), "hole", "moderate")],
            [ErrorCase("classification_error", "region", 1, 10, "type", "stain", "hole")],
        ),
        # ...but not on another photo of the same garment
        (
            [STAIN],
            [drawn(99, (0, 0, 90, 90), "stain")],
            [ErrorCase("false_negative", "region", None, 99, None, None, "stain")],
        ),
        # a region the human said nothing about is not an error
        ([STAIN, HOLE], [judged(HOLE, "hole")], []),
        # a drawn "normal" box is no defect claim
        ([], [drawn(10, (0, 0, 5, 5), "normal")], []),
    ],
)
def test_region_disagreements(model, human, expected):
    assert (
        classify(
            model_regions=model, model_verdict=None, human_regions=human, human_verdict="reject"
        )
        == expected
    )


@pytest.mark.parametrize(
    ("model_verdict", "human_verdict", "expected"),
    [
        (
            "pass",
            "reject",
            [ErrorCase("false_negative", "item", from_value="pass", to_value="reject")],
        ),
        (
            "reject",
            "pass",
            [ErrorCase("false_positive", "item", from_value="reject", to_value="pass")],
        ),
        ("pass", "pass", []),
        ("reject", "reject", []),
        (None, "reject", []),  # the model made no call (inference failed): not its error
    ],
)
def test_item_disagreements(model_verdict, human_verdict, expected):
    assert (
        classify(
            model_regions=[],
            model_verdict=model_verdict,
            human_regions=[],
            human_verdict=human_verdict,
        )
        == expected
    )


def test_explicit_reference_wins_over_overlap():
    other = ModelRegion(9, 10, (0, 0, 100, 100), "stain", "moderate")  # same box as STAIN
    cases = classify(
        model_regions=[STAIN, other],
        model_verdict=None,
        human_regions=[judged(other, "normal"), judged(STAIN, "stain")],
        human_verdict="pass",
    )
    assert [c.model_region_id for c in cases] == [9]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (10, 10, 20, 20), 0.0),
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),
    ],
)
def test_iou(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)


def test_per_class_precision_and_recall_by_hand():
    pairs = [
        ("stain", "stain"),
        ("stain", "stain"),
        ("stain", "normal"),  # stain: 2 TP, 1 FP
        ("hole", "tear"),  # hole FP, tear FN
        (None, "tear"),
        ("tear", "tear"),  # tear: 1 TP, 2 FN in all
        ("normal", "normal"),  # no class
    ]
    counts = per_class_counts(pairs)
    assert counts == {
        "hole": ClassCounts(0, 1, 0),
        "stain": ClassCounts(2, 1, 0),
        "tear": ClassCounts(1, 0, 2),
    }
    assert counts["stain"].precision == pytest.approx(2 / 3)
    assert counts["stain"].recall == 1.0
    assert counts["tear"].recall == pytest.approx(1 / 3)
    assert counts["hole"].recall is None  # no actual holes: undefined, not zero


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 100, 0.0, 0.036995),  # no escape seen still has an upper bound
        (5, 100, 0.021544, 0.111753),
        (50, 100, 0.403832, 0.596168),
        (1, 1, 0.206549, 1.0),
    ],
)
def test_wilson_interval_matches_hand_computed_values(k, n, lo, hi):
    low, high = wilson_interval(k, n)
    assert (low, high) == (pytest.approx(lo, abs=1e-5), pytest.approx(hi, abs=1e-5))


def test_wilson_interval_edge_cases():
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
