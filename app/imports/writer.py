"""Imported images into the object store and the database.

`--as verified`: each image is an inspection (station and source "import:<name>", status
routed with no route: no model ran, so the routing mix never counts it) with one photo, a
review task that is already decided, and the decision in effect, whose region answers are
the imported boxes (outcome "added": boxes no model proposed). The decision has no user
and no model verdict: it is nobody's work (per-inspector numbers join the user), no
judgement of a model (agreement, confusion and the triggers read model verdicts and model
regions) and has no error cases. app.learning.verified and app.learning.crops see it as
any verified item.

`--as inspect`: each image is accepted as a station's upload is (app.inspections.service:
photo, inspection and outbox row in one transaction, so the worker runs the models and
routes it), with the labels kept in `inspection.reference_labels`.

Rows are written in batches, one transaction each, with plain Core inserts (a history of
10,000 images is 50,000 rows). Photos go to the store before the rows, as uploads do: a
failed commit leaves an unreferenced content-addressed object, never a row that points at
nothing. Every batch holds one advisory lock while it checks what is present and writes,
so two imports of the same folder at once still store each image once.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, text, tuple_, update
from sqlalchemy.orm import Session

from app.imports.plan import Labels
from app.imports.records import SourceImage
from app.inspections.service import accept, photo_key
from app.inspections.tables import Inspection, Photo
from app.inspections.validation import CheckedImage
from app.review.tables import Decision, DecisionRegion, ReviewTask
from app.storage import ObjectStore

IMPORTED = "imported"  # review_task.reason and inspection.route_reason of an imported label
# One lock for every import's check-then-write (an arbitrary constant: "loupe" "imp" in ASCII).
IMPORT_LOCK = 0x6C6F757065_696D70
MAX_EXTERNAL_ID = 200


@dataclass(frozen=True)
class Pending:
    """An image read and checked, waiting for its batch to be written."""

    record: SourceImage
    image: CheckedImage
    labels: Labels | None
    external_id: str


def external_id_of(name: str) -> str:
    """The export-relative path, so that an item can be found by its file; a path too long
    for the column keeps its start and a digest of the whole."""
    if len(name) <= MAX_EXTERNAL_ID:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: MAX_EXTERNAL_ID - 18]}#{digest}"


def lock(session: Session) -> None:
    """Until this transaction ends, no other import checks or writes."""
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK})


def present(session: Session, hashes: Sequence[str]) -> set[str]:
    """The content hashes among `hashes` that some photo already has."""
    if not hashes:
        return set()
    rows = session.scalars(select(Photo.content_hash).where(Photo.content_hash.in_(hashes)))
    return set(rows)


def paths_taken(session: Session, station: str, external_ids: Sequence[str]) -> set[str]:
    """External ids this import's station already has (with other bytes, once `present`
    has been asked: the file changed since it was imported)."""
    if not external_ids:
        return set()
    pairs = [(station, e) for e in external_ids]
    rows = session.scalars(
        select(Inspection.external_id).where(
            tuple_(Inspection.station, Inspection.external_id).in_(pairs)
        )
    )
    return {row for row in rows if row is not None}


def write_verified(
    session: Session, store: ObjectStore, source: str, items: Sequence[Pending], now: datetime
) -> None:
    """Store the photos, then insert the batch's rows (not committed: the caller does)."""
    for item in items:
        store.put(photo_key(item.image), item.image.data, item.image.content_type)
    ids = [uuid.uuid4() for _ in items]
    session.execute(
        insert(Inspection.__table__),
        [_inspection_row(i, item, source, now) for i, item in zip(ids, items, strict=True)],
    )
    photo_ids = _insert_returning(
        session,
        Photo.__table__,
        [_photo_row(i, item.image, now) for i, item in zip(ids, items, strict=True)],
    )
    task_ids = _insert_returning(session, ReviewTask.__table__, [_task_row(i, now) for i in ids])
    decision_ids = _insert_returning(
        session,
        Decision.__table__,
        [_decision_row(t, i, item, now) for t, i, item in zip(task_ids, ids, items, strict=True)],
    )
    answers = [
        _answer_row(d, p, box)
        for d, p, item in zip(decision_ids, photo_ids, items, strict=True)
        for box in (item.labels.boxes if item.labels else ())
    ]
    if answers:
        session.execute(insert(DecisionRegion.__table__), answers)
    task = ReviewTask.__table__
    session.execute(
        update(task)
        .where(task.c.id == bindparam("task"))
        .values(decision_id=bindparam("decision")),
        [{"task": t, "decision": d} for t, d in zip(task_ids, decision_ids, strict=True)],
    )


def write_for_inspection(session: Session, store: ObjectStore, source: str, item: Pending) -> bool:
    """Accept the photo as a station's upload, with its labels as reference; commits.
    False when the same path was accepted before."""
    accepted = accept(
        session=session,
        store=store,
        station=source,
        images=[item.image],
        views=[None],
        external_id=item.external_id,
        source=source,
        reference_labels=reference_labels(item),
    )
    return accepted.created


def reference_labels(item: Pending) -> dict[str, Any] | None:
    """The labels an item came with, in taxonomy terms and photo pixels (the pixel
    convention of app.imports.records); None when it came without any.

    {"split": "val", "label": "hole" | null,
     "boxes": [{"photo": 0, "type": "hole", "severity": null, "box": [x1, y1, x2, y2]}]}
    """
    if item.labels is None:
        return None
    return {
        "split": item.record.split,
        "label": item.labels.label,
        "boxes": [
            {
                "photo": 0,
                "type": b.defect_type,
                "severity": b.severity,
                "box": [b.x1, b.y1, b.x2, b.y2],
            }
            for b in item.labels.boxes
        ],  # fmt: skip
    }


def _insert_returning(session: Session, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    result = session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    return list(result.scalars())


def _inspection_row(id_: uuid.UUID, item: Pending, source: str, now: datetime) -> dict[str, Any]:
    assert item.labels is not None  # ground truth always has labels (plan.labels_of)
    return {
        "id": id_, "station": source, "source": source, "external_id": item.external_id,
        "status": "routed", "route_reason": IMPORTED, "verdict": item.labels.verdict,
        "created_at": now, "status_changed_at": now,
    }  # fmt: skip


def _photo_row(inspection_id: uuid.UUID, image: CheckedImage, now: datetime) -> dict[str, Any]:
    return {
        "inspection_id": inspection_id, "position": 0, "object_key": photo_key(image),
        "content_hash": image.content_hash, "content_type": image.content_type,
        "size_bytes": len(image.data), "width": image.width, "height": image.height,
        "created_at": now,
    }  # fmt: skip


def _task_row(inspection_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    return {
        "inspection_id": inspection_id, "reason": IMPORTED, "confidence": 0.0,
        "priority_key": 0, "created_at": now, "due_at": now, "decided_at": now,
    }  # fmt: skip


def _decision_row(
    task_id: int, inspection_id: uuid.UUID, item: Pending, now: datetime
) -> dict[str, Any]:
    assert item.labels is not None
    return {
        "review_task_id": task_id, "inspection_id": inspection_id, "user_id": None,
        "verdict": item.labels.verdict, "attempt": 0, "model_verdict": None, "created_at": now,
    }  # fmt: skip


def _answer_row(decision_id: int, photo_id: int, box: Any) -> dict[str, Any]:
    return {
        "decision_id": decision_id, "region_id": None, "photo_id": photo_id,
        "x1": box.x1, "y1": box.y1, "x2": box.x2, "y2": box.y2,
        "defect_type": box.defect_type, "severity": box.severity, "outcome": "added",
    }  # fmt: skip
