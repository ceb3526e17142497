"""What an export holds: the verified samples now, or a dataset snapshot's.

Both are the detector's dataset manifest (app.learning.snapshot): one sample per photo
of an item whose decision in effect is a usable label, carrying the boxes that decision
left: changed types as changed, "not a defect" boxes gone, drawn boxes in. The live data
is built by the same code a snapshot is (and split the same way: frozen test items to
"test", the rest by a hash of the inspection id), so exporting now and exporting the
snapshot taken now give the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.instructions import snapshots as instruction_snapshots
from app.learning.snapshot import MANIFEST_FORMAT, build_manifest, load_manifest
from app.learning.tables import DatasetSnapshot, TestSetItem, TrainingRun
from app.learning.verified import verified_decisions, verified_photos
from app.review.tables import Decision
from app.storage import ObjectStore


@dataclass(frozen=True)
class Chosen:
    """The data of one export and where it came from (loupe-export.yaml's `source`)."""

    manifest: dict[str, Any]
    source: dict[str, Any]


class UnknownDatasetSnapshot(LookupError):
    """No dataset snapshot has that id."""


class NotADatasetSnapshot(ValueError):
    """The snapshot holds a classifier's crops, not photos with boxes."""


def live_manifest(
    *, session: Session, val_share: float, since: datetime | None = None
) -> dict[str, Any]:
    """The verified samples now, as a snapshot would hold them; with `since`, only items
    whose decision in effect was made at or after it."""
    photos = verified_photos(session=session)
    if since is not None:
        recent = verified_decisions().where(Decision.created_at >= since)
        decided = set(session.scalars(recent))  # the first column: the decision's id
        photos = [photo for photo in photos if photo.decision_id in decided]
    test_ids = set(session.scalars(select(TestSetItem.inspection_id)))
    return build_manifest(photos, test_ids, val_share)


def snapshot_manifest(
    *, session: Session, store: ObjectStore, snapshot_id: int
) -> tuple[DatasetSnapshot, dict[str, Any]]:
    """A detector dataset snapshot and its manifest, checked against its recorded hash."""
    snapshot = session.get(DatasetSnapshot, snapshot_id)
    if snapshot is None:
        raise UnknownDatasetSnapshot(f"there is no dataset snapshot {snapshot_id}")
    manifest = load_manifest(store=store, snapshot=snapshot)
    if manifest.get("format") != MANIFEST_FORMAT or "samples" not in manifest:
        raise NotADatasetSnapshot(
            f"dataset snapshot {snapshot_id} holds a classifier evaluation's crops, not "
            "photos with boxes; export a detector snapshot, or `instructions` for crops"
        )
    return snapshot, manifest


# A classifier evaluation's crops snapshot shares the table with the detector's datasets;
# only the run that took it tells them apart.
_CROPS = exists().where(
    TrainingRun.snapshot_id == DatasetSnapshot.id, TrainingRun.kind == "classifier"
)


def detector_snapshots(*, session: Session, limit: int) -> list[DatasetSnapshot]:
    """Recent dataset snapshots of photos with boxes, newest first."""
    query = select(DatasetSnapshot).where(~_CROPS).order_by(DatasetSnapshot.id.desc())
    return list(session.scalars(query.limit(limit)))


def detector_snapshot(*, session: Session, snapshot_id: int) -> DatasetSnapshot | None:
    """The dataset snapshot of photos with boxes that has this id, if there is one."""
    query = select(DatasetSnapshot).where(DatasetSnapshot.id == snapshot_id, ~_CROPS)
    return session.scalars(query).first()


def manifest_source(snapshot: DatasetSnapshot | None, since: datetime | None) -> dict[str, Any]:
    """Where an export's data came from, as loupe-export.yaml records it."""
    if snapshot is not None:
        return {"kind": "snapshot", "snapshot": snapshot.id,
                "manifest_sha256": snapshot.manifest_sha256,
                "taken_at": snapshot.created_at.isoformat()}  # fmt: skip
    return {"kind": "live", "since": since.isoformat() if since else None}


def choose(
    *, session: Session, store: ObjectStore, fmt: str, val_share: float,
    snapshot: int | str | None = None, since: datetime | None = None,
) -> Chosen:  # fmt: skip
    """The data for `fmt`: an instruction snapshot (its id or first digits; the newest by
    default) for "instructions"; a detector dataset snapshot by id, or the live verified
    data (decided since `since`), for the box formats. Raises the lookup errors of either."""
    if fmt == "instructions":
        row = instruction_snapshots.find_snapshot(
            session=session, ident=None if snapshot is None else str(snapshot)
        )
        manifest = instruction_snapshots.load_manifest(store=store, snapshot=row)
        return Chosen(manifest, {"kind": "instruction_snapshot", "snapshot": row.id})
    if snapshot is not None:
        found, manifest = snapshot_manifest(session=session, store=store, snapshot_id=int(snapshot))
        return Chosen(manifest, manifest_source(found, None))
    manifest = live_manifest(session=session, val_share=val_share, since=since)
    return Chosen(manifest, manifest_source(None, since))
