"""What the models propose for an item, in the same terms as a human decision.

Pure. The routing policy (app.policy.routing) decides which items a human sees; this
answers, for any item, "what would the models have decided?": the verdict the inspector's
"confirm the model" key stands for, and the automatic verdict an audit is measured
against. It reads the regions the same way the policy does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from app.policy.routing import DecisionTable, Thresholds

# Route reasons of items the models could not judge (all of it, or some of its regions):
# there is nothing to confirm, and the page says so.
NO_MODEL_RESULT = frozenset({"inference_unavailable", "model_error"})


class ScoredRegion(Protocol):
    detector_score: float
    confidence: float
    defect_type: str
    severity: str


def model_verdict(
    regions: Iterable[ScoredRegion],
    *,
    thresholds: Thresholds,
    table: DecisionTable,
    failed: bool = False,
) -> str | None:
    """ "pass" or "reject" as the models would decide; None when there is no model result."""
    if failed:
        return None
    found = [r for r in regions if r.detector_score >= thresholds.detector]
    # Below the low threshold a region is a likely false alarm (the policy auto-passes it).
    counted = [r for r in found if r.confidence >= thresholds.low]
    if any(table.verdict(r.defect_type, r.severity) == "reject" for r in counted):
        return "reject"
    return "pass"
