"""Dataset snapshots: the verified samples of one moment, frozen as a manifest.

The manifest lists every sample (photo key and content hash, size, human boxes) with its
split. It is written to the object store under its own sha256, so it cannot change
without changing its name, and the same data taken twice is one snapshot. The split is
stable: frozen test items go to "test", every other item to train or val by a hash of
its inspection id (models.training.data.split_for), so an item never changes sides as
the data grows.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.learning.tables import SPLITS, DatasetSnapshot, TestSetItem, TrainedItem
from app.learning.verified import VerifiedPhoto, verified_photos
from app.storage import ObjectStore
from models.training.data import split_for

MANIFEST_FORMAT = 1
PREFIX = "snapshots/"


class SnapshotCorrupt(RuntimeError):
    """The manifest in the object store does not match the hash its snapshot recorded."""


def build_manifest(
    photos: Sequence[VerifiedPhoto], test_ids: Collection[uuid.UUID], val_share: float
) -> dict[str, Any]:
    """The manifest for these samples. Pure; the same samples give the same bytes."""
    samples = []
    for photo in sorted(photos, key=lambda p: (str(p.inspection_id), p.position)):
        item = str(photo.inspection_id)
        split = "test" if photo.inspection_id in test_ids else split_for(item, val_share)
        samples.append(
            {
                "id": f"{item}/{photo.position}",
                "inspection_id": item,
                "decision_id": photo.decision_id,
                "photo_id": photo.photo_id,
                "key": photo.object_key,
                "sha256": photo.content_hash,
                "width": photo.width,
                "height": photo.height,
                "split": split,
                "boxes": [{"label": b.label, "box": [b.x1, b.y1, b.x2, b.y2]} for b in photo.boxes],
            }
        )
    return {"format": MANIFEST_FORMAT, "val_share": val_share, "samples": samples}


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def manifest_counts(manifest: dict[str, Any]) -> dict[str, Any]:
    """Samples and boxes per split and class, as the snapshot row records them."""
    split_counts: Counter[str] = Counter()
    class_counts: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    for sample in manifest["samples"]:
        split_counts[sample["split"]] += 1
        class_counts[sample["split"]].update(box["label"] for box in sample["boxes"])
    return {
        "samples": len(manifest["samples"]),
        "inspections": len({s["inspection_id"] for s in manifest["samples"]}),
        "split_counts": {split: split_counts[split] for split in SPLITS},
        "class_counts": {split: dict(sorted(c.items())) for split, c in class_counts.items()},
        "max_decision_id": max((s["decision_id"] for s in manifest["samples"]), default=None),
    }


def take_snapshot(
    *, session: Session, store: ObjectStore, val_share: float
) -> tuple[DatasetSnapshot, dict[str, Any]]:
    """Snapshot the verified samples now: manifest to the store, then the row (not committed).

    The store is written first: a rolled-back transaction leaves at most an unreferenced
    manifest, never a row pointing at nothing.
    """
    test_ids = set(session.scalars(select(TestSetItem.inspection_id)))
    manifest = build_manifest(verified_photos(session=session), test_ids, val_share)
    snapshot = save_snapshot(
        session=session, store=store, manifest=manifest, counts=manifest_counts(manifest),
        val_share=val_share,
    )  # fmt: skip
    return snapshot, manifest


def save_snapshot(
    *,
    session: Session,
    store: ObjectStore,
    manifest: dict[str, Any],
    counts: dict[str, Any],
    val_share: float,
) -> DatasetSnapshot:
    """Write a manifest under its sha256, then its row (one row per distinct manifest)."""
    body = manifest_bytes(manifest)
    digest = hashlib.sha256(body).hexdigest()
    key = f"{PREFIX}{digest}.json"
    store.put(key, body, "application/json")
    session.execute(
        insert(DatasetSnapshot)
        .values(manifest_key=key, manifest_sha256=digest, val_share=val_share, **counts)
        .on_conflict_do_nothing(index_elements=["manifest_sha256"])
    )
    return session.scalars(
        select(DatasetSnapshot).where(DatasetSnapshot.manifest_sha256 == digest)
    ).one()


def reserve_for_training(
    *, session: Session, snapshot: DatasetSnapshot, manifest: dict[str, Any]
) -> int:
    """Record the train split's items as trained on, when a run is queued to train on them.

    From then on no test-set freeze can pick them, even before the worker starts. A
    refused snapshot reserves nothing: its items were never trained on and may still be
    frozen. Returns how many items were new to the record.
    """
    trained = sorted({s["inspection_id"] for s in manifest["samples"] if s["split"] == "train"})
    if not trained:
        return 0
    rows = [{"inspection_id": uuid.UUID(item), "snapshot_id": snapshot.id} for item in trained]
    added = session.scalars(
        insert(TrainedItem)
        .on_conflict_do_nothing(index_elements=["inspection_id"])
        .returning(TrainedItem.inspection_id),
        rows,
    ).all()
    return len(added)


def load_manifest(*, store: ObjectStore, snapshot: DatasetSnapshot) -> dict[str, Any]:
    """The snapshot's manifest, checked against the hash the row recorded."""
    body = store.get(snapshot.manifest_key)
    digest = hashlib.sha256(body).hexdigest()
    if digest != snapshot.manifest_sha256:
        raise SnapshotCorrupt(
            f"snapshot {snapshot.id}: {snapshot.manifest_key} has sha256 {digest}, "
            f"the snapshot recorded {snapshot.manifest_sha256}"
        )
    manifest: dict[str, Any] = json.loads(body)
    return manifest
