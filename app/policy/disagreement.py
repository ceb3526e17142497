"""Where the human and the model disagree, and how: the error cases that feed the dashboard.

Pure: plain values in, error cases out. A human region either refers to the model region
it judged (`region_id`) or is a box the human drew; a drawn box that overlaps a model
region enough (IoU) is taken as a judgement of that region.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Literal

NOT_A_DEFECT = "normal"
MATCH_IOU = 0.5

ErrorKind = Literal["false_positive", "false_negative", "classification_error"]
Field = Literal["type", "severity"]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in photo pixels


@dataclass(frozen=True)
class ModelRegion:
    region_id: int
    photo_id: int
    box: Box
    defect_type: str
    severity: str


@dataclass(frozen=True)
class HumanRegion:
    photo_id: int
    box: Box
    defect_type: str  # "normal" when the human says it is not a defect
    severity: str | None
    region_id: int | None = None  # the model region judged; None for a drawn box


@dataclass(frozen=True)
class ErrorCase:
    kind: ErrorKind
    scope: Literal["region", "item"]
    model_region_id: int | None = None
    photo_id: int | None = None
    field: Field | None = None
    from_value: str | None = None  # the model's value
    to_value: str | None = None  # the human's value
    # The box to show with the case: the model's, or the one the human drew for a missed
    # defect. Not part of what the case *is*, so equal cases compare equal without it.
    box: Box | None = dataclass_field(default=None, compare=False)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 for empty or disjoint boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_regions(
    model: list[ModelRegion], human: list[HumanRegion], min_iou: float = MATCH_IOU
) -> tuple[list[tuple[ModelRegion, HumanRegion]], list[HumanRegion]]:
    """Pair each model region with the human's judgement of it; return the unpaired drawn boxes.

    Explicit references win; then each drawn box goes to the free model region on the same
    photo it overlaps most, if that overlap reaches `min_iou`.
    """
    by_id = {m.region_id: m for m in model}
    pairs: dict[int, tuple[ModelRegion, HumanRegion]] = {}
    drawn: list[HumanRegion] = []
    for h in human:
        if h.region_id is not None and h.region_id in by_id and h.region_id not in pairs:
            pairs[h.region_id] = (by_id[h.region_id], h)
        else:
            drawn.append(h)
    unmatched: list[HumanRegion] = []
    for h in drawn:
        free = [m for m in model if m.region_id not in pairs and m.photo_id == h.photo_id]
        best = max(free, key=lambda m: iou(m.box, h.box), default=None)
        if best is not None and iou(best.box, h.box) >= min_iou:
            pairs[best.region_id] = (best, h)
        else:
            unmatched.append(h)
    return list(pairs.values()), unmatched


def _region_case(
    kind: ErrorKind, m: ModelRegion, h: HumanRegion, field: Field | None = None
) -> ErrorCase:
    """An error about model region `m`; from/to are the values of the field that differs."""
    attr = "severity" if field == "severity" else "defect_type"
    return ErrorCase(
        kind,
        "region",
        model_region_id=m.region_id,
        photo_id=m.photo_id,
        field=field,
        from_value=getattr(m, attr),
        to_value=getattr(h, attr),
        box=m.box,
    )


def _judge_pair(m: ModelRegion, h: HumanRegion) -> ErrorCase | None:
    model_flagged = m.defect_type != NOT_A_DEFECT
    human_flagged = h.defect_type != NOT_A_DEFECT
    if model_flagged and not human_flagged:
        return _region_case("false_positive", m, h)
    if human_flagged and not model_flagged:
        return _region_case("false_negative", m, h)
    if not model_flagged:
        return None  # both say "not a defect"
    if h.defect_type != m.defect_type:
        return _region_case("classification_error", m, h, field="type")
    if h.severity is not None and h.severity != m.severity:
        return _region_case("classification_error", m, h, field="severity")
    return None


def classify(
    *,
    model_regions: list[ModelRegion],
    model_verdict: str | None,
    human_regions: list[HumanRegion],
    human_verdict: str,
    min_iou: float = MATCH_IOU,
) -> list[ErrorCase]:
    """Every disagreement between one human decision and the model's result for the item.

    Region cases compare each judged region; a model region the human made no statement
    about is not an error. Item cases compare verdicts: the model passed what the human
    rejected (false negative) or rejected what the human passed (false positive).
    `model_verdict` is None when the model made no call (a failure), which is no error.
    """
    pairs, unmatched = match_regions(model_regions, human_regions, min_iou)
    cases = [c for m, h in pairs if (c := _judge_pair(m, h)) is not None]
    cases += [
        ErrorCase(
            "false_negative", "region", photo_id=h.photo_id, to_value=h.defect_type, box=h.box
        )
        for h in unmatched
        if h.defect_type != NOT_A_DEFECT
    ]
    if model_verdict == "pass" and human_verdict == "reject":
        cases.append(ErrorCase("false_negative", "item", from_value="pass", to_value="reject"))
    elif model_verdict == "reject" and human_verdict == "pass":
        cases.append(ErrorCase("false_positive", "item", from_value="reject", to_value="pass"))
    return cases
