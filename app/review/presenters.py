"""What the review page shows of an item: photos, numbered regions, evidence, age, priority.

About confidence and audits. Audits are a random sample of items the models decided on
their own; they only measure how often automatic decisions are wrong if inspectors cannot
tell them apart from the ordinary uncertain items. So an inspector never sees:
- the item's confidence (an audit's is >= the high threshold, < the low one, or none);
- the route reason (an audit shows as "needs a human decision", like any other);
- a queue position derived from the real confidence: audits wait at the middle of the
  review band (app.review.priority.audit_queue_confidence), and the priority band on the
  page comes from that queue key.
Region confidences are shown, because the issue asks for them and they tell the inspector
where the model hesitated. They are real numbers, also on audits; a careful inspector
could notice that no region falls inside the review band and guess an audit. A site that
wants fully blind audits sets LOUPE_REVIEW_SHOW_REGION_CONFIDENCE=0. An inspector's
agreement with audits is computed over closed days only (app.review.stats) for the same
reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from app.config import Settings
from app.inspections.tables import Photo, Region
from app.review import priority
from app.review.proposal import NO_MODEL_RESULT, counted, model_verdict, routed_with
from app.review.rules import Rules
from app.review.service import ReviewItem
from models.taxonomy import NORMAL, load_taxonomy

PALETTE_SIZE = 12
MAX_EVIDENCE_ITEMS = 8
MAX_TEXT = 300
ALTERNATIVE_MIN_P = 0.05
NAME_FIELDS = ("key", "name", "check", "label", "exception")


@dataclass(frozen=True)
class ExceptionCheck:
    """One answer of the exception check (step 2): shadow, intentional design, lint ..."""

    name: str
    probability: float | None
    detail: str
    fired: bool = False  # at or above its threshold: it overturned the candidate defect


@dataclass(frozen=True)
class RegionView:
    number: int
    region: Region
    colour: int
    confidence: int | None  # percentage points; None when the site hides them
    alternatives: list[tuple[str, int]]  # other likely types, in points
    exceptions: list[ExceptionCheck]
    candidate: str | None  # step 1's type when the exception check overturned it
    error: str  # why the models could not judge this region, if they could not
    counted: bool = False  # the models' verdict weighs it (app.review.proposal.counted)


@dataclass(frozen=True)
class PhotoView:
    photo: Photo
    regions: list[RegionView]


@dataclass(frozen=True)
class ItemView:
    task: Any  # a review_task row
    reference: str  # the station's id for the garment (or the station)
    photos: list[PhotoView]
    reason: str
    waited_s: int
    due_in_s: int
    band: str
    model_verdict: str | None

    @property
    def regions(self) -> list[RegionView]:
        return [r for p in self.photos for r in p.regions]


@lru_cache
def type_colours() -> dict[str, int]:
    """A colour per defect type, by its place in the taxonomy (data, so new types get one)."""
    types = [t for t in load_taxonomy().type_keys if t != NORMAL]
    return {t: i % PALETTE_SIZE for i, t in enumerate(types)}


def colour_of(defect_type: str) -> int:
    return type_colours().get(defect_type, PALETTE_SIZE)  # PALETTE_SIZE: unknown type, grey


def visible_reason(task: Any) -> str:
    """Why the item is in the queue, as inspectors see it: audits look like any other item."""
    return task.reason if task.reason in NO_MODEL_RESULT else "uncertain"


def item_view(item: ReviewItem, *, settings: Settings, rules: Rules, now: datetime) -> ItemView:
    """The view of a task loaded with its inspection, photos and regions."""
    task = item.task
    show = settings.review_show_region_confidence
    inspection = item.inspection
    thresholds = routed_with(rules.thresholds, inspection.band_high, inspection.band_low)
    by_photo: dict[int, list[Region]] = {}
    for region in item.regions:
        by_photo.setdefault(region.photo_id, []).append(region)
    photos, number = [], 0
    for photo in item.photos:
        views = []
        for region in by_photo.get(photo.id, []):
            number += 1
            weighed = counted(region, thresholds)
            views.append(region_view(number, region, show_confidence=show, counted=weighed))
        photos.append(PhotoView(photo, views))
    effective = priority.effective_points(
        key=task.priority_key,
        now=now,
        sla_seconds=settings.review_sla_seconds,
        aging_weight=settings.review_aging_weight,
    )
    overdue = task.due_at <= now
    failed = task.reason in NO_MODEL_RESULT
    return ItemView(
        task=task,
        reference=item.inspection.external_id or item.inspection.station,
        photos=photos,
        reason=visible_reason(task),
        waited_s=max(0, int((now - task.created_at).total_seconds())),
        due_in_s=int((task.due_at - now).total_seconds()),
        band=priority.band(
            effective=effective,
            overdue=overdue,
            low=thresholds.low,
            high=thresholds.high,
        ),
        model_verdict=model_verdict(
            item.regions, thresholds=thresholds, table=rules.table, failed=failed
        ),
    )


def region_view(
    number: int, region: Region, *, show_confidence: bool, counted: bool = False
) -> RegionView:
    evidence = region.evidence if isinstance(region.evidence, dict) else {}
    return RegionView(
        number=number,
        region=region,
        colour=colour_of(region.defect_type),
        confidence=priority.confidence_points(region.confidence) if show_confidence else None,
        alternatives=alternatives(evidence.get("type_distribution"), region.defect_type),
        exceptions=exception_checks(evidence.get("exceptions")),
        candidate=_candidate(evidence.get("candidate_type"), region.defect_type),
        error=str(evidence.get("error") or "")[:MAX_TEXT],
        counted=counted,
    )


def _candidate(value: Any, defect_type: str) -> str | None:
    if isinstance(value, str) and value and value != defect_type:
        return value[:50]
    return None


def alternatives(distribution: Any, chosen: str) -> list[tuple[str, int]]:
    """The next most likely types after the chosen one (at most two, 5 % or more)."""
    if not isinstance(distribution, dict):
        return []
    scored = [
        (str(k), p) for k, v in distribution.items() if k != chosen and (p := _probability(v))
    ]
    scored.sort(key=lambda kv: -kv[1])
    return [(k, round(p * 100)) for k, p in scored[:2] if p >= ALTERNATIVE_MIN_P]


def exception_checks(raw: Any) -> list[ExceptionCheck]:
    """The exception check's evidence in whatever shape it was stored, never trusted.

    Accepts {"shadow": 0.8}, {"shadow": {"probability": 0.8, "answer": "yes"}},
    [{"name": "shadow", "p": 0.8}], ["text", ...] or a plain string. Text is cut short
    and escaped by the template like all model output.
    """
    if isinstance(raw, dict):
        items = [_check(str(name), value) for name, value in raw.items()]
    elif isinstance(raw, list):
        items = [_check_from_item(item) for item in raw]
    elif isinstance(raw, str) and raw.strip():
        items = [ExceptionCheck("", None, raw.strip()[:MAX_TEXT])]
    else:
        items = []
    return [item for item in items if item.name or item.detail][:MAX_EVIDENCE_ITEMS]


def _check_from_item(item: Any) -> ExceptionCheck:
    if isinstance(item, dict):
        name = next((item[k] for k in NAME_FIELDS if k in item), "")
        return _check(str(name), item)
    return ExceptionCheck("", None, str(item)[:MAX_TEXT])


def _check(name: str, value: Any) -> ExceptionCheck:
    name = name[:100]
    if isinstance(value, dict):
        probability = next(
            (p for k in ("probability", "p", "score", "yes") if (p := _probability(value.get(k)))
             is not None),
            None,
        )  # fmt: skip
        detail = next((value[k] for k in ("answer", "reason", "text") if k in value), "")
        threshold = _probability(value.get("threshold"))
        fired = value.get("fired")
        if not isinstance(fired, bool):  # said outright, or worked out from the threshold
            fired = None not in (probability, threshold) and probability >= threshold  # type: ignore[operator]
        return ExceptionCheck(name, probability, str(detail)[:MAX_TEXT], bool(fired))
    if isinstance(value, bool):
        return ExceptionCheck(name, None, "yes" if value else "no")
    probability = _probability(value)
    detail = "" if probability is not None or value is None else str(value)[:MAX_TEXT]
    return ExceptionCheck(name, probability, detail)


def _probability(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None
