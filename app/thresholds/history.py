"""The recorded history a replay runs on: each routed item's regions as the models
scored them, how its truth was sampled, and the inspector's verdict.

Two queries, whatever the number of items: the items routed in the window, then their
regions. Labels imported with a site's history (route NULL) are not routed items.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.inspections.tables import Inspection, Region
from app.policy.routing import RoutingPolicy, Verdict
from app.policy.thresholds import (
    Band,
    BandEstimate,
    RecordedItem,
    RecordedRegion,
    Stratum,
    replay,
)

AUTOMATIC = ("auto_pass", "auto_reject")
# Reasons that send an item to people whatever the band: nothing a band could decide.
ALWAYS_HUMAN = ("inference_unavailable", "cold_start")


@dataclass(frozen=True)
class History:
    items: list[RecordedItem]
    waiting: int  # reviewed items without a decision yet, left out


def load(session: Session, *, since: datetime, until: datetime) -> History:
    rows = session.execute(
        select(Inspection.id, Inspection.route, Inspection.route_reason, Inspection.is_audit,
               Inspection.verdict)
        .where(Inspection.routed_at >= since, Inspection.routed_at < until,
               Inspection.route.is_not(None))
        .order_by(Inspection.routed_at, Inspection.id)
    ).all()  # fmt: skip
    regions: dict[uuid.UUID, list[RecordedRegion]] = {row.id: [] for row in rows}
    if regions:
        scored = session.execute(
            select(Region.inspection_id, Region.detector_score, Region.confidence,
                   Region.defect_type, Region.severity, Region.evidence["error"].isnot(None))
            .where(Region.inspection_id.in_(list(regions)))
        ).tuples()  # fmt: skip
        for inspection_id, detector, confidence, defect_type, severity, failed in scored:
            regions[inspection_id].append(
                RecordedRegion(detector, confidence, defect_type, severity, bool(failed))
            )
    items, waiting = [], 0
    for row in rows:
        stratum: Stratum
        if row.route in AUTOMATIC:
            stratum, truth = "automatic", None
        elif row.is_audit:  # automatic, then sampled for an inspector
            stratum = "audited" if row.verdict is not None else "automatic"
            truth = row.verdict
        elif row.verdict is None:
            waiting += 1
            continue
        else:
            stratum, truth = "reviewed", row.verdict
        recorded = None if row.route_reason in ALWAYS_HUMAN else tuple(regions[row.id])
        items.append(RecordedItem(recorded, stratum, cast(Verdict | None, truth)))
    return History(items, waiting)


def simulate(
    session: Session,
    *,
    routing: RoutingPolicy,
    bands: Sequence[Band],
    since: datetime,
    until: datetime,
    min_support: int,
) -> tuple[History, list[BandEstimate]]:
    """The window's history, and each band replayed on it with the site's decision table,
    detector threshold and audit rate (`loupe thresholds simulate`, the dashboard)."""
    history = load(session, since=since, until=until)
    t = routing.thresholds
    estimates = replay(
        history.items, bands, table=routing.table, detector_threshold=t.detector,
        audit_rate=t.audit_rate, min_support=min_support,
    )  # fmt: skip
    return history, estimates


def with_band_in_force(routing: RoutingPolicy, bands: Sequence[Band]) -> list[Band]:
    """The band in force first, then the others (without repeating it)."""
    in_force = Band(routing.thresholds.high, routing.thresholds.low)
    return [in_force, *(b for b in bands if b != in_force)]
