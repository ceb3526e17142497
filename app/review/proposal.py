"""What the models propose for an item, in the same terms as a human decision.

Pure. The routing policy (app.policy.routing) decides which items a human sees; this
answers, for any item, "what would the models have decided?": the verdict the inspector's
"confirm the model" key stands for, and the automatic verdict an audit is measured
against. It reads the regions the same way the policy does.

Once the inspector corrected a region, the same key stands for "the item as it now
stands": their answers where they touched a region or drew one, the models' reading of
the rest (`corrected_verdict`). The page shows that verdict on the key's button before
it is pressed, from the same decision table (`verdict_table`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
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


class Answer(Protocol):
    """A human's answer for one region (app.review.edits.RegionAnswer)."""

    # Read-only, so that frozen dataclasses such as RegionAnswer satisfy the protocol.
    @property
    def region_id(self) -> int | None: ...
    @property
    def defect_type(self) -> str: ...
    @property
    def severity(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...  # confirmed | changed | not_defect | added


def routed_with(thresholds: Thresholds, high: float | None, low: float | None) -> Thresholds:
    """The thresholds an item was routed with: the site's, with the band recorded on the
    item when it has one (an item routed before bands were recorded has none)."""
    if high is None or low is None:
        return thresholds
    return replace(thresholds, high=high, low=low)


def counted(region: ScoredRegion, thresholds: Thresholds) -> bool:
    """Whether the models' verdict weighs this region: found by the detector, and not a
    likely false alarm (below the low threshold the policy auto-passes it)."""
    return region.detector_score >= thresholds.detector and region.confidence >= thresholds.low


def verdict_of(marks: Iterable[tuple[str, str | None]], table: DecisionTable) -> str:
    """ "reject" when any (defect type, severity) is a reject under the table, else "pass"."""
    # A missing severity reads as "" (the table treats an unknown severity as the worst).
    return "reject" if any(table.verdict(t, s or "") == "reject" for t, s in marks) else "pass"


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
    return verdict_of(
        ((r.defect_type, r.severity) for r in regions if counted(r, thresholds)), table
    )


def corrected_verdict(
    answers: Iterable[Answer], *, counted_ids: Collection[int], table: DecisionTable
) -> str:
    """The verdict of the item as the inspector left it: a region they changed or drew
    counts as they said, one they called not a defect does not count, and one they left
    alone counts as the models read it (`counted_ids`)."""
    marks = [
        (a.defect_type, a.severity)
        for a in answers
        if a.outcome in ("changed", "added")
        or (a.outcome == "confirmed" and a.region_id in counted_ids)
    ]
    return verdict_of(marks, table)


def marks_a_defect(answers: Iterable[Answer], defect_types: Collection[str]) -> bool:
    """Whether any answer names a defect somewhere on the item. A reject without one says
    neither what nor where, so the detector cannot learn from it."""
    return any(a.defect_type in defect_types for a in answers)


def verdict_table(
    table: DecisionTable, types: Iterable[str], severities: Iterable[str]
) -> dict[str, str]:
    """Every "type/severity" -> verdict, for the page to show what a key will decide
    without a copy of the table's rules ("type/" is the verdict without a severity)."""
    return {f"{t}/{s}": table.verdict(t, s) for t in types for s in (*severities, "")}
