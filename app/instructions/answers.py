"""One verified region answer, as plain values: what the instruction builders read.

A verified region answer is a region answer of a decision in effect: a model region the
inspector confirmed, changed or called "not a defect", or a box the inspector drew
(app.learning.crops). Beside the inspector's label it carries what the model said about
the region (both steps, as Region.evidence recorded them) and the decision's tags and
note. Nothing here reads a database; app.instructions.source fills these in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.policy import disagreement

# A region the classifier failed on carries this type: it was never judged, so there is
# no answer of the model to learn from (as app.feedback.capture treats it).
NOT_JUDGED = "unknown"


@dataclass(frozen=True)
class ExceptionCheck:
    """Step 2's answer for one exception: P(yes), the threshold, whether it fired."""

    key: str
    probability: float
    threshold: float
    fired: bool


@dataclass(frozen=True)
class ModelAnswer:
    defect_type: str  # the final label (step 1's candidate unless an exception fired)
    severity: str
    probability: float | None  # of the final label after step 2; None where not recorded
    candidate_type: str  # step 1's answer
    type_distribution: dict[str, float]  # step 1, as scored
    exceptions: tuple[ExceptionCheck, ...] = ()

    @property
    def overturned_by(self) -> list[ExceptionCheck]:
        return [check for check in self.exceptions if check.fired]

    def check(self, key: str) -> ExceptionCheck | None:
        return next((c for c in self.exceptions if c.key == key), None)

    def runner_up(self, besides: str) -> str | None:
        """Step 1's most probable type other than `besides` (ties: the earlier one)."""
        others = [(p, t) for t, p in self.type_distribution.items() if t != besides]
        return max(others, key=lambda pair: pair[0])[1] if others else None


@dataclass(frozen=True)
class RegionAnswer:
    crop_id: int  # the decision_region row: one crop, one answer
    decision_id: int
    inspection_id: str
    photo_key: str
    photo_sha256: str
    box: tuple[float, float, float, float]
    outcome: str  # confirmed | changed | not_defect | added
    defect_type: str  # the inspector's ("normal": not a defect)
    severity: str | None  # None for "normal"
    model: ModelAnswer | None  # None for a drawn box, or a region the classifier failed on
    tags: tuple[str, ...] = ()
    note: str = ""


def model_answer(
    defect_type: str | None, severity: str | None, evidence: dict[str, Any] | None
) -> ModelAnswer | None:
    """The model's answer from a region row (None when there is no judged model region)."""
    evidence = evidence or {}
    if defect_type is None or defect_type == NOT_JUDGED or evidence.get("error"):
        return None
    probability = evidence.get("type_probability")
    checks = tuple(
        ExceptionCheck(
            str(e["key"]), float(e["probability"]), float(e["threshold"]), bool(e["fired"])
        )
        for e in evidence.get("exceptions", [])
    )
    return ModelAnswer(
        defect_type=defect_type,
        severity=severity or "",
        probability=float(probability) if probability is not None else None,
        candidate_type=str(evidence.get("candidate_type") or defect_type),
        type_distribution={
            str(k): float(v) for k, v in evidence.get("type_distribution", {}).items()
        },
        exceptions=checks,
    )


def error_of(answer: RegionAnswer) -> disagreement.ErrorCase | None:
    """The region's error case, by the same rule as the dashboard's (app.policy.disagreement):
    None where the inspector agreed with the model."""
    box = answer.box
    model = (
        [disagreement.ModelRegion(0, 0, box, answer.model.defect_type, answer.model.severity)]
        if answer.model
        else []
    )
    human = disagreement.HumanRegion(
        0, box, answer.defect_type, answer.severity, region_id=0 if answer.model else None
    )
    cases = disagreement.classify(
        model_regions=model, model_verdict=None, human_regions=[human], human_verdict="pass"
    )
    return cases[0] if cases else None
