"""What the models propose for an item: the verdict "confirm the model" stands for."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.policy.routing import DecisionTable, Thresholds
from app.review.proposal import (
    corrected_verdict,
    counted,
    marks_a_defect,
    model_verdict,
    verdict_table,
)

T = Thresholds(detector=0.25, high=0.95, low=0.70)


@dataclass
class R:
    confidence: float
    severity: str = "minor"
    defect_type: str = "stain"
    detector_score: float = 0.9


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        ([], "pass"),  # nothing found
        ([R(0.80, "moderate")], "reject"),  # uncertain but the table rejects moderate
        ([R(0.80, "minor")], "pass"),
        ([R(0.99, "severe"), R(0.75, "minor")], "reject"),
        ([R(0.50, "severe")], "pass"),  # below low: a likely false alarm, as the policy says
        ([R(0.90, "severe", detector_score=0.1)], "pass"),  # below the detector threshold
        ([R(0.80, "minor", defect_type="normal")], "pass"),
    ],
)
def test_model_verdict_reads_regions_like_the_routing_policy(regions, expected):
    assert model_verdict(regions, thresholds=T, table=DecisionTable()) == expected


def test_overrides_and_failures():
    holes = DecisionTable.from_json('{"hole": {"*": "reject"}}')
    assert model_verdict([R(0.8, "minor", "hole")], thresholds=T, table=holes) == "reject"
    assert model_verdict([R(0.8)], thresholds=T, table=holes, failed=True) is None


@dataclass
class A:
    """A human's answer for one region."""

    outcome: str
    defect_type: str = "stain"
    severity: str | None = "minor"
    region_id: int | None = 1


@pytest.mark.parametrize(
    ("answers", "counted_ids", "expected"),
    [
        ([A("confirmed", severity="severe")], {1}, "reject"),  # untouched: as the model said
        ([A("confirmed", severity="severe")], set(), "pass"),  # ... which ignored this one
        ([A("changed", "hole", "severe")], set(), "reject"),  # a correction always counts
        ([A("changed", "stain", "minor")], {1}, "pass"),
        ([A("not_defect", "normal", None)], {1}, "pass"),
        ([A("confirmed"), A("added", "tear", "moderate", None)], {1}, "reject"),
        ([A("changed", "hole", None)], {1}, "reject"),  # no severity reads as the worst
        ([], set(), "pass"),
    ],
)
def test_the_confirm_key_with_corrections_decides_the_item_as_it_now_stands(
    answers, counted_ids, expected
):
    assert corrected_verdict(answers, counted_ids=counted_ids, table=DecisionTable()) == expected


def test_without_corrections_the_confirm_key_means_the_models_verdict():
    regions = [R(0.99, "severe"), R(0.5, "severe"), R(0.8, "minor")]
    answers = [A("confirmed", r.defect_type, r.severity, i) for i, r in enumerate(regions)]
    counted_ids = {i for i, r in enumerate(regions) if counted(r, T)}
    for table in (DecisionTable(), DecisionTable.from_json('{"stain": {"minor": "reject"}}')):
        assert corrected_verdict(answers, counted_ids=counted_ids, table=table) == model_verdict(
            regions, thresholds=T, table=table
        )


def test_a_reject_marks_a_defect_only_with_a_defect_type():
    types = {"stain", "hole"}
    assert marks_a_defect([A("not_defect", "normal", None), A("added", "hole")], types)
    assert not marks_a_defect([A("not_defect", "normal", None), A("confirmed", "normal")], types)
    assert not marks_a_defect([A("confirmed", "unknown")], types)  # the model failed on it
    assert not marks_a_defect([], types)


def test_the_pages_verdict_table_is_the_decision_tables():
    table = DecisionTable.from_json('{"hole": {"*": "reject"}, "stain": {"severe": "pass"}}')
    verdicts = verdict_table(table, ["stain", "hole", "normal"], ["minor", "severe"])
    assert verdicts == {
        "stain/minor": "pass", "stain/severe": "pass", "stain/": "reject",
        "hole/minor": "reject", "hole/severe": "reject", "hole/": "reject",
        "normal/minor": "pass", "normal/severe": "pass", "normal/": "pass",
    }  # fmt: skip
