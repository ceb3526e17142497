"""The review band in force, and how the ML team changes it: propose, apply, dismiss,
roll back (app.thresholds.tables). Every change is an audit event too.

Routing and review read the band through `settings_in_force`: the settings with the
applied band's thresholds, read from the database at most every BAND_TTL_S per process,
so that a band applied on /ml/models reaches every worker within seconds without a
restart, and the hot paths do not query for it on every item. The worker records the band
it routed an item with on the inspection (band_high, band_low); the item's review weighs
its regions by that band (app.review.proposal.routed_with), not by the one in force later.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import record
from app.config import Settings
from app.db import session_scope, utcnow
from app.policy.thresholds import Band
from app.thresholds.tables import RoutingBand

BAND_TTL_S = 5.0
HISTORY = 20


class BandError(ValueError):
    """A change that cannot be made; the message says why."""


def in_force(session: Session) -> RoutingBand | None:
    """The newest applied band; None while the settings' band is in force."""
    return session.scalar(
        select(RoutingBand)
        .where(RoutingBand.state == "applied")
        .order_by(RoutingBand.decided_at.desc(), RoutingBand.id.desc())
        .limit(1)
    )


def propose(
    session: Session, *, band: Band, note: str, user_id: int | None, source: str = "recommend"
) -> RoutingBand:
    row = RoutingBand(high=band.high, low=band.low, state="proposed", source=source,
                      note=note[:2000], proposed_by=user_id, proposed_at=utcnow())  # fmt: skip
    session.add(row)
    session.flush()
    record(session=session, actor_id=user_id, action="band.propose",
           subject=f"routing_band:{row.id}", band=str(band), note=note[:200])  # fmt: skip
    return row


def apply(session: Session, *, band_id: int, user_id: int) -> RoutingBand:
    """Apply a proposal: it is the band in force from now. The caller commits."""
    return _close(session, band_id, user_id, "applied", "band.apply")


def dismiss(session: Session, *, band_id: int, user_id: int) -> RoutingBand:
    """Dismiss a proposal. The caller commits."""
    return _close(session, band_id, user_id, "dismissed", "band.dismiss")


def _close(session: Session, band_id: int, user_id: int, state: str, action: str) -> RoutingBand:
    row = session.get(RoutingBand, band_id, with_for_update=True)
    if row is None or row.state != "proposed":
        raise BandError("that proposal is no longer open: it was applied or dismissed")
    row.state, row.decided_by, row.decided_at = state, user_id, utcnow()
    record(session=session, actor_id=user_id, action=action, subject=f"routing_band:{row.id}",
           band=f"{row.high:.2f}:{row.low:.2f}")  # fmt: skip
    return row


def roll_back(session: Session, *, settings: Settings, user_id: int) -> Band:
    """Put the band before the one in force back in force (the settings' band when none
    was applied before it), as a new applied row. The caller commits."""
    applied = list(
        session.scalars(
            select(RoutingBand)
            .where(RoutingBand.state == "applied")
            .order_by(RoutingBand.decided_at.desc(), RoutingBand.id.desc())
            .limit(2)
            .with_for_update()
        )
    )
    if not applied:
        raise BandError("no band was applied: the settings' band is in force already")
    before = applied[1] if len(applied) > 1 else None
    band = (Band(before.high, before.low) if before is not None
            else Band(settings.threshold_high, settings.threshold_low))  # fmt: skip
    now = utcnow()
    row = RoutingBand(high=band.high, low=band.low, state="applied", source="rollback",
                      note=f"rolled back from {applied[0].high:.2f}:{applied[0].low:.2f}",
                      proposed_by=user_id, proposed_at=now, decided_by=user_id,
                      decided_at=now)  # fmt: skip
    session.add(row)
    session.flush()
    record(session=session, actor_id=user_id, action="band.rollback",
           subject=f"routing_band:{row.id}", band=str(band))  # fmt: skip
    return band


@dataclass(frozen=True)
class Overview:
    in_force: RoutingBand | None
    proposals: list[RoutingBand]
    history: list[RoutingBand]


def overview(session: Session) -> Overview:
    proposals = list(session.scalars(
        select(RoutingBand).where(RoutingBand.state == "proposed").order_by(RoutingBand.id.desc())
    ))  # fmt: skip
    history = list(session.scalars(
        select(RoutingBand).where(RoutingBand.state != "proposed")
        .order_by(RoutingBand.decided_at.desc(), RoutingBand.id.desc()).limit(HISTORY)
    ))  # fmt: skip
    applied = next((r for r in history if r.state == "applied"), None)
    return Overview(applied, proposals, history)


# --- the band as routing reads it -----------------------------------------------------------

_lock = threading.Lock()
_read: tuple[float, tuple[float, float] | None] | None = None  # (when, band applied)
# The last copy made: (the settings it copies, the band, the copy). One band is in force at
# a time, and holding the settings object keeps its identity from being reused.
_copy: tuple[Settings, tuple[float, float], Settings] | None = None


def settings_in_force(settings: Settings, *, now: float | None = None) -> Settings:
    """`settings` with the applied band's thresholds (the same object when none is
    applied, or when it equals theirs). The copy is kept for the same settings object and
    band, so callers that cache by settings (app.review.rules.rules_for) keep their cache."""
    global _read, _copy
    clock = time.monotonic() if now is None else now
    with _lock:
        if _read is None or clock - _read[0] >= BAND_TTL_S:
            _read = (clock, _applied_band())
        band = _read[1]
        if band is None or band == (settings.threshold_high, settings.threshold_low):
            return settings
        if _copy is None or _copy[0] is not settings or _copy[1] != band:
            _copy = (settings, band, _with_band(settings, *band))
        return _copy[2]


def forget() -> None:
    """Read the band again on next use (after this process applied one; tests)."""
    global _read, _copy
    with _lock:
        _read, _copy = None, None


def _applied_band() -> tuple[float, float] | None:
    with session_scope() as session:
        row = in_force(session)
        return (row.high, row.low) if row is not None else None


def with_applied(settings: Settings, session: Session) -> Settings:
    """`settings` with the band applied in this session's database (the command line, which
    may read another database than the process's settings name)."""
    row = in_force(session)
    return settings if row is None else _with_band(settings, row.high, row.low)


def _with_band(settings: Settings, high: float, low: float) -> Settings:
    return settings.model_copy(update={"threshold_high": high, "threshold_low": low})
