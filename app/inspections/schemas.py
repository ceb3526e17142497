"""What the station API returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from app.inspections.tables import Inspection, Region
from app.review.tables import Decision, DecisionRegion


class Created(BaseModel):
    id: uuid.UUID
    status: str
    status_url: str


class BoxOut(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class RegionOut(BaseModel):
    photo: int  # the photo's position in the upload, from 0
    box: BoxOut
    detector_score: float
    defect_type: str
    severity: str
    confidence: float
    reason: str
    # Step 1's defect type; differs from defect_type when a step 2 exception fired.
    candidate_type: str
    overturned_by: list[str]  # the exceptions that turned the region into "normal"
    error: str | None  # why the models could not judge the region (it went to review)


class PhotoOut(BaseModel):
    position: int
    view: str | None
    width: int
    height: int
    content_hash: str


Source = Literal["model", "inspector", "import"]  # "import": came with a site's history


class FinalRegionOut(BaseModel):
    """A defect as finally decided: the inspector's answer after review (a changed type, a
    drawn box), or the models' region for an automatic decision. Regions found not to be a
    defect are left out."""

    photo: int
    box: BoxOut
    defect_type: str
    severity: str | None
    source: Source


class OutcomeOut(BaseModel):
    """The garment's final decision, for the warehouse system."""

    # "import": a label that came with a site's history (`loupe import`), no one's decision
    decided_by: Literal["model", "inspector", "import"]
    decided_at: datetime
    verdict: str  # pass | reject
    model_verdict: str | None  # what the models said (for review: what they proposed)
    is_audit: bool  # an automatic decision an inspector checked
    regions: list[FinalRegionOut]


class InspectionOut(BaseModel):
    id: uuid.UUID
    station: str
    external_id: str | None
    status: str  # queued | inferring | routed
    route: str | None  # auto_pass | auto_reject | review
    route_reason: str | None
    verdict: str | None  # pass | reject, once the models or a human decided
    confidence: float | None
    detector_version: str | None
    classifier_version: str | None
    prompt_version: str | None
    arm: str | None  # champion | challenger: which models decided
    created_at: datetime
    routed_at: datetime | None
    photos: list[PhotoOut]
    regions: list[RegionOut]  # what the models found
    outcome: OutcomeOut | None  # None while the item waits for its models or an inspector

    @classmethod
    def of(cls, inspection: Inspection, decision: Decision | None = None) -> InspectionOut:
        positions = {p.id: p.position for p in inspection.photos}
        return cls(
            outcome=_outcome(inspection, decision, positions),
            id=inspection.id,
            station=inspection.station,
            external_id=inspection.external_id,
            status=inspection.status,
            route=inspection.route,
            route_reason=inspection.route_reason,
            verdict=inspection.verdict,
            confidence=inspection.confidence,
            detector_version=inspection.detector_version,
            classifier_version=inspection.classifier_version,
            prompt_version=inspection.prompt_version,
            arm=inspection.arm,
            created_at=inspection.created_at,
            routed_at=inspection.routed_at,
            photos=[
                PhotoOut(
                    position=p.position,
                    view=p.view,
                    width=p.width,
                    height=p.height,
                    content_hash=p.content_hash,
                )
                for p in inspection.photos
            ],
            regions=[
                RegionOut(
                    photo=positions[r.photo_id],
                    box=BoxOut(x1=r.x1, y1=r.y1, x2=r.x2, y2=r.y2),
                    detector_score=r.detector_score,
                    defect_type=r.defect_type,
                    severity=r.severity,
                    confidence=r.confidence,
                    reason=r.reason,
                    candidate_type=r.evidence.get("candidate_type", r.defect_type),
                    overturned_by=list(r.evidence.get("overturned_by", [])),
                    error=r.evidence.get("error"),
                )
                for r in inspection.regions
            ],
        )


class InspectionPage(BaseModel):
    """A page of inspections in the listing's order (app.inspections.listing)."""

    items: list[InspectionOut]
    # Where to continue: send it as `after` (null only when nothing was listed yet).
    next: str | None


def _outcome(
    inspection: Inspection, decision: Decision | None, positions: dict[int, int]
) -> OutcomeOut | None:
    if decision is not None:
        who: Source = "import" if decision.user_id is None else "inspector"
        return OutcomeOut(
            decided_by=who,
            decided_at=decision.created_at,
            verdict=decision.verdict,
            model_verdict=decision.model_verdict,
            is_audit=decision.is_audit,
            regions=[
                _final(r, positions, who)
                for r in decision.regions
                if r.outcome != "not_defect" and r.defect_type != "normal"
            ],
        )
    automatic = inspection.route in ("auto_pass", "auto_reject")
    if not automatic or inspection.verdict is None or inspection.routed_at is None:
        return None
    return OutcomeOut(
        decided_by="model",
        decided_at=inspection.routed_at,
        verdict=inspection.verdict,
        model_verdict=inspection.verdict,
        is_audit=False,
        regions=[
            _final(r, positions, "model") for r in inspection.regions if r.defect_type != "normal"
        ],
    )


def _final(
    region: Region | DecisionRegion, positions: dict[int, int], source: Source
) -> FinalRegionOut:
    """A model's region or an inspector's answer: both have a photo, a box, a type and a
    severity."""
    return FinalRegionOut(
        photo=positions[region.photo_id],
        box=BoxOut(x1=region.x1, y1=region.y1, x2=region.x2, y2=region.y2),
        defect_type=region.defect_type,
        severity=region.severity,
        source=source,
    )
