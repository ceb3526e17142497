"""What the models propose for an item: the verdict "confirm the model" stands for."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.policy.routing import DecisionTable, Thresholds
from app.review.proposal import model_verdict

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
