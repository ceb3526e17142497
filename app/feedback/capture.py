"""Turn one human decision into its error cases, in the same transaction as the decision.

The comparison itself is the pure policy (app.policy.disagreement.classify); this module
maps the review's rows onto it and the cases back onto `error_case` rows. It runs inside
"decide and next", so it does no I/O of its own: the caller inserts the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.policy import disagreement
from app.review.edits import ModelRegion
from app.review.tables import Decision

# A region the classifier failed on carries this type: it is a failure (counted by the
# route reason), not a judgement the human can disagree with.
NOT_JUDGED = "unknown"


def error_case_rows(
    decision: Decision, model_regions: Sequence[ModelRegion]
) -> list[dict[str, Any]]:
    """The `error_case` rows for a decision that has its id (empty when the human agreed)."""
    judged = {r.id: r for r in model_regions if r.defect_type != NOT_JUDGED}
    model = [
        disagreement.ModelRegion(r.id, r.photo_id, r.box, r.defect_type, r.severity)
        for r in judged.values()
    ]
    human = [
        disagreement.HumanRegion(
            photo_id=a.photo_id,
            box=(a.x1, a.y1, a.x2, a.y2),
            defect_type=a.defect_type,
            severity=a.severity,
            region_id=a.region_id,
        )
        for a in decision.regions
        if a.region_id is None or a.region_id in judged
    ]
    cases = disagreement.classify(
        model_regions=model,
        model_verdict=decision.model_verdict,
        human_regions=human,
        human_verdict=decision.verdict,
    )
    return [_row(decision, case, judged) for case in cases]


def _row(
    decision: Decision, case: disagreement.ErrorCase, judged: dict[int, ModelRegion]
) -> dict[str, Any]:
    model_label, human_label = case.from_value, case.to_value
    if case.field == "severity" and case.model_region_id is not None:
        # Same type, different severity: the pattern is about that type.
        model_label = human_label = judged[case.model_region_id].defect_type
    x1, y1, x2, y2 = case.box if case.box is not None else (None, None, None, None)
    return {
        "decision_id": decision.id,
        "inspection_id": decision.inspection_id,
        "kind": case.kind,
        "scope": case.scope,
        "region_id": case.model_region_id,
        "photo_id": case.photo_id,
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
        "model_label": model_label,
        "human_label": human_label,
        "field": case.field,
        "from_value": case.from_value,
        "to_value": case.to_value,
        "tags": list(decision.tags),
        "is_audit": decision.is_audit,
        "detector_version": decision.detector_version,
        "classifier_version": decision.classifier_version,
        "prompt_version": decision.prompt_version,
        "decided_at": decision.created_at,
    }
