"""Queue order: lower confidence first, then higher severity, then older, with aging.

Pure: plain values in and out, so the order can be table-tested without a database.

The order is the tuple (effective points, severity rank descending, created_at), where
effective points are the item's confidence in whole percentage points (what inspectors
see) minus the aging points it has earned by waiting: `aging_weight * 100` points over
one SLA (4 h by default), counted in steps of SLA/100 (2.4 minutes at 4 h). At weight 1,
an item that has waited its whole SLA goes ahead of any fresh item, whatever its
confidence.

Aging is counted against one clock shared by every row: the step boundaries are
multiples of SLA/100 since the epoch, not since each item's arrival. The effective
points are then `priority_key - clock(now)`, where `priority_key = points + clock(created_at)`
is fixed at creation. `clock(now)` is the same for every row, so ordering by the stored
`priority_key` orders by effective priority at any moment: the claim stays one index scan
on `review_task_open_idx (priority_key, severity_rank DESC, created_at)` with FOR UPDATE
SKIP LOCKED, and nothing has to be recomputed as time passes.
"""

from __future__ import annotations

import math
from datetime import datetime

POINTS = 100  # confidence 1.0 in points
SEVERITY_RANK = {"minor": 1, "moderate": 2, "severe": 3}
BANDS = ("overdue", "urgent", "high", "normal")


def confidence_points(confidence: float) -> int:
    """A confidence in whole percentage points, as the review page shows it."""
    return round(min(1.0, max(0.0, confidence)) * POINTS)


def aging_clock(moment: datetime, *, sla_seconds: int, aging_weight: float) -> int:
    """Aging steps from the epoch to `moment`: one point per SLA/(100*weight) seconds."""
    points_per_sla = POINTS * aging_weight
    return math.floor(moment.timestamp() * points_per_sla / max(1, sla_seconds))


def priority_key(
    *, confidence: float, created_at: datetime, sla_seconds: int, aging_weight: float
) -> int:
    """The stored sort key of a new task; lower is claimed first."""
    clock = aging_clock(created_at, sla_seconds=sla_seconds, aging_weight=aging_weight)
    return confidence_points(confidence) + clock


def effective_points(*, key: int, now: datetime, sla_seconds: int, aging_weight: float) -> int:
    """The item's confidence points minus what it earned by waiting; may go below zero."""
    return key - aging_clock(now, sla_seconds=sla_seconds, aging_weight=aging_weight)


def audit_queue_confidence(*, low: float, high: float) -> float:
    """Where audits wait in the queue: the middle of the review band.

    Audits carry the confidence of an automatic route (>= high, < low, or none at all), so
    queueing them by it would put them all at the very front or back of the queue, and an
    inspector would learn that the first or last items of a shift are the audits.
    """
    return (low + high) / 2


def band_limits(*, low: float, high: float) -> tuple[int, int]:
    """Effective points below which an item is `urgent`, and below which it is `high`."""
    return confidence_points(low), confidence_points((low + high) / 2)


def band(*, effective: int, overdue: bool, low: float, high: float) -> str:
    """The priority band an item is in now: overdue, urgent, high or normal."""
    if overdue:
        return "overdue"
    urgent_below, high_below = band_limits(low=low, high=high)
    if effective < urgent_below:
        return "urgent"
    return "high" if effective < high_below else "normal"
