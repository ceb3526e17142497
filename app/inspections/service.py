"""Accepting an inspection: photos into the object store, rows and outbox in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, bindparam, or_, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.inspections.tables import Inspection, Photo
from app.inspections.validation import CheckedImage
from app.outbox import REQUEST_ID_KEY, Outbox
from app.review.tables import Decision, ReviewTask
from app.storage import ObjectStore
from app.task_names import RUN_INFERENCE
from models import logs


@dataclass(frozen=True)
class Accepted:
    inspection_id: uuid.UUID
    status: str
    created: bool  # False when an idempotent repeat returned the existing inspection


def photo_key(image: CheckedImage) -> str:
    """Content-addressed key: the same photo is stored once, whoever sends it."""
    h = image.content_hash
    return f"{h[:2]}/{h}.{image.extension}"


def recorded_station(token_station: str, camera: str | None) -> str:
    """The station an upload is recorded under: the token's own, or a camera under it
    ("dock-3/cam-2"). The form may name a camera, never another station: a token reads, and
    replays idempotency keys of, only what was recorded under its own station."""
    if not camera or camera == token_station or camera.startswith(token_station + "/"):
        return camera or token_station
    return f"{token_station}/{camera}"


def belongs_to(inspection: Inspection, token_station: str) -> bool:
    return inspection.station == token_station or inspection.station.startswith(token_station + "/")


def find_existing(
    *, session: Session, station: str, external_id: str | None, idempotency_key: str | None
) -> Inspection | None:
    """The inspection this station already sent under the same key or external id."""
    conditions = []
    if external_id:
        conditions.append(Inspection.external_id == external_id)
    if idempotency_key:
        conditions.append(Inspection.idempotency_key == idempotency_key)
    if not conditions:
        return None
    return session.scalar(
        select(Inspection).where(Inspection.station == station, or_(*conditions)).limit(1)
    )


def inference_payload(inspection_id: uuid.UUID) -> dict[str, str]:
    """The inference task's message; the upload's request id rides along (the relay sends it
    as a header), so the worker's and Serve's log lines carry it too."""
    payload = {"inspection_id": str(inspection_id)}
    if request_id := logs.current().get("request_id"):
        payload[REQUEST_ID_KEY] = str(request_id)
    return payload


def accept(
    *,
    session: Session,
    store: ObjectStore,
    station: str,
    images: list[CheckedImage],
    views: list[str | None],
    external_id: str | None = None,
    idempotency_key: str | None = None,
    source: str | None = None,
    reference_labels: dict[str, Any] | None = None,
) -> Accepted:
    """Store the photos, then commit the inspection, its photos and an outbox row together.

    `source` and `reference_labels` are an import's (app.imports): where the photos came
    from, and the labels they came with, kept to compare the models with.
    """
    existing = find_existing(
        session=session, station=station, external_id=external_id, idempotency_key=idempotency_key
    )
    if existing is not None:
        return Accepted(existing.id, existing.status, created=False)
    # Photos go to the store first: a failed commit leaves only an unreferenced,
    # content-addressed object, never a row that points at nothing.
    keys = [photo_key(image) for image in images]
    for image, key in zip(images, keys, strict=True):
        store.put(key, image.data, image.content_type)
    photos = [
        {"view": view, "object_key": key, "content_hash": image.content_hash,
         "content_type": image.content_type, "size_bytes": len(image.data),
         "width": image.width, "height": image.height}
        for image, view, key in zip(images, views, keys, strict=True)
    ]  # fmt: skip
    inspection_id, now = uuid.uuid4(), utcnow()
    values: dict[str, Any] = {
        "inspection_id": inspection_id, "station": station, "external_id": external_id,
        "idempotency_key": idempotency_key, "source": source,
        "reference_labels": reference_labels, "now": now, "task": RUN_INFERENCE,
        "payload": inference_payload(inspection_id),
    }  # fmt: skip
    for i, photo in enumerate(photos):
        values |= {f"{column}_{i}": photo[column] for column in PHOTO_COLUMNS}
    try:
        session.execute(_insert_inspection(len(images)), values)
        session.commit()
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its inspection.
        session.rollback()
        existing = find_existing(
            session=session,
            station=station,
            external_id=external_id,
            idempotency_key=idempotency_key,
        )
        if existing is None:
            raise
        return Accepted(existing.id, existing.status, created=False)
    return Accepted(inspection_id, "queued", created=True)


@lru_cache(maxsize=16)
def _insert_inspection(photos: int) -> Insert:
    """The inspection, its photos and the inference task's outbox row in one statement
    (the photos and the outbox row are CTEs): one round trip, no unit of work to flush.
    Foreign keys are checked at the end of the statement, when the inspection is there.
    Built once per number of photos, with bound parameters: building it costs more CPU
    than running it. Every column with a Python default is given: SQLAlchemy cannot fill
    the defaults of INSERTs inside a CTE. Parameters: see accept()."""
    inspection_id: BindParameter[Any] = bindparam("inspection_id")
    now: BindParameter[Any] = bindparam("now")
    photo_rows = [
        {"inspection_id": inspection_id, "position": i, "created_at": now}
        | {column: bindparam(f"{column}_{i}") for column in PHOTO_COLUMNS}
        for i in range(photos)
    ]
    outbox = insert(Outbox.__table__).values(
        task=bindparam("task"), payload=bindparam("payload"), created_at=now, attempts=0
    )
    return (
        insert(Inspection.__table__)
        .values(
            id=inspection_id,
            status="queued",
            is_audit=False,
            created_at=now,
            status_changed_at=now,
            **{column: bindparam(column) for column in INSPECTION_COLUMNS},
        )
        .add_cte(
            insert(Photo.__table__).values(photo_rows).cte("new_photos"),
            outbox.cte("new_outbox"),
        )
    )


# The columns accept() gives a value of its own (a photo's once per photo, "<column>_<i>").
INSPECTION_COLUMNS = (
    "station", "external_id", "idempotency_key", "source", "reference_labels"
)  # fmt: skip
PHOTO_COLUMNS = (
    "view", "object_key", "content_hash", "content_type", "size_bytes", "width", "height"
)  # fmt: skip


def get(*, session: Session, inspection_id: uuid.UUID) -> Inspection | None:
    """An inspection with its photos and regions loaded."""
    return session.scalar(
        select(Inspection)
        .where(Inspection.id == inspection_id)
        .options(selectinload(Inspection.photos), selectinload(Inspection.regions))
    )


def decision_in_effect(*, session: Session, inspection_id: uuid.UUID) -> Decision | None:
    """The inspector's decision that stands for the item (its review task points at it:
    an undo or a re-review moves the pointer), with its regions; None before one."""
    return session.scalar(
        select(Decision)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .where(ReviewTask.inspection_id == inspection_id)
        .options(selectinload(Decision.regions))
    )
