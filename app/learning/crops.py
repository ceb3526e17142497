"""Verified crops: what a classifier candidate is judged on, frozen as a snapshot.

A verified crop is one region answer of a decision in effect (`review_task.decision_id`):
a model region the human confirmed, changed or called "not a defect" ("normal"), or a
box the human drew. Unlike the detector's samples, "normal" answers count: telling a
shadow from a stain is half the classifier's job.

A classifier that was never instruction-tuned by the loop (its prompts and examples
changed, or weights trained elsewhere arrived) has seen no verified crop, and is judged on
any of them. A tuned one (app.learning.tuning) has been trained on every verified crop
outside the frozen test set, so it, and any candidate compared with it, is judged on the
frozen test set's crops only (`frozen_only`). A snapshot takes at most `limit` crops in
the order of a hash of the answer's id: the same data gives the same crops, and nobody's
choice of easy crops can flatter a candidate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from PIL import Image
from sqlalchemy import Select, Text, cast, func, select
from sqlalchemy.orm import Session

from app.inspections.tables import Photo
from app.learning.photos import fetch_photo
from app.learning.snapshot import save_snapshot
from app.learning.tables import DatasetSnapshot, TestSetItem
from app.review.tables import Decision, DecisionRegion, ReviewTask
from app.storage import ObjectStore
from models.contracts import Box
from models.images import crop_with_context
from models.pipeline import PipelineOptions
from models.training.evaluate_classifier import LabelledCrop

CROPS_FORMAT = "loupe.crops/1"


def verified_crops() -> Select[*tuple[Any, ...]]:
    """Every verified crop's answer, box and photo (DecisionRegion.id is the crop's id)."""
    return (
        select(
            DecisionRegion.id,
            Decision.id.label("decision_id"),
            Decision.inspection_id,
            Photo.id.label("photo_id"),
            Photo.object_key,
            Photo.content_hash,
            DecisionRegion.x1,
            DecisionRegion.y1,
            DecisionRegion.x2,
            DecisionRegion.y2,
            DecisionRegion.defect_type,
            DecisionRegion.severity,
        )
        .join(Decision, Decision.id == DecisionRegion.decision_id)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .join(Photo, Photo.id == DecisionRegion.photo_id)
    )


def hash_order() -> Any:
    """A stable order that no person chose: the sha256 of the answer's id."""
    return func.sha256(func.convert_to(cast(DecisionRegion.id, Text), "UTF8"))


def build_crops_manifest(
    *, session: Session, limit: int, exclude: Collection[int] = (), frozen_only: bool = False
) -> dict[str, Any]:
    """At most `limit` verified crops, in hash order, as a manifest; `exclude` leaves out
    crops by id (the few-shot examples the compared prompts show the model), and
    `frozen_only` keeps the crops of frozen test items only."""
    query = verified_crops().order_by(hash_order()).limit(limit)
    if exclude:
        query = query.where(DecisionRegion.id.not_in(list(exclude)))
    if frozen_only:
        query = query.join(TestSetItem, TestSetItem.inspection_id == Decision.inspection_id)
    rows = session.execute(query).all()
    crops = [
        {
            "id": row.id,
            "decision_id": row.decision_id,
            "inspection_id": str(row.inspection_id),
            "photo_id": row.photo_id,
            "key": row.object_key,
            "sha256": row.content_hash,
            "box": [row.x1, row.y1, row.x2, row.y2],
            "defect_type": row.defect_type,
            "severity": row.severity,
        }
        for row in sorted(rows, key=lambda r: r.id)
    ]
    manifest: dict[str, Any] = {"format": CROPS_FORMAT, "crops": crops}
    return manifest | {"frozen_only": True} if frozen_only else manifest


def evaluated_on(manifest: dict[str, Any]) -> str:
    """What a candidate judged on this crops snapshot was judged on, as metrics say it."""
    return "frozen_test_crops" if manifest.get("frozen_only") else "verified_crops"


def crops_counts(manifest: dict[str, Any]) -> dict[str, Any]:
    """A crops snapshot's row: every crop is a test crop (the classifier never trains here)."""
    crops = manifest["crops"]
    return {
        "samples": len(crops),
        "inspections": len({c["inspection_id"] for c in crops}),
        "split_counts": {"train": 0, "val": 0, "test": len(crops)},
        "class_counts": {
            "train": {},
            "val": {},
            "test": dict(sorted(Counter(c["defect_type"] for c in crops).items())),
        },
        "max_decision_id": max((c["decision_id"] for c in crops), default=None),
    }


def take_crops_snapshot(
    *, session: Session, store: ObjectStore, limit: int, exclude: Collection[int] = (),
    frozen_only: bool = False,
) -> DatasetSnapshot:  # fmt: skip
    manifest = build_crops_manifest(
        session=session, limit=limit, exclude=exclude, frozen_only=frozen_only
    )
    return save_snapshot(session=session, store=store, manifest=manifest,
                         counts=crops_counts(manifest), val_share=0.0)  # fmt: skip


def cut(
    image: Image.Image, box: list[float], options: PipelineOptions | None = None
) -> Image.Image:
    """A crop as the pipeline cuts it for the classifier (the same context padding)."""
    return crop_with_context(image, Box(*box), (options or PipelineOptions()).context)


def load_crops(
    manifest: dict[str, Any], store: ObjectStore, options: PipelineOptions | None = None
) -> list[LabelledCrop]:
    """Every crop of the manifest, cut as the pipeline cuts them (same context padding).

    Each photo is checked against the hash the snapshot recorded and read once.
    """
    if manifest.get("format") != CROPS_FORMAT:
        raise ValueError(f"not a crops manifest (format {manifest.get('format')!r})")
    photos: dict[str, Image.Image] = {}
    crops = []
    for entry in manifest["crops"]:
        if entry["key"] not in photos:
            photos[entry["key"]] = fetch_photo(store, entry["key"], entry["sha256"])
        crop = cut(photos[entry["key"]], entry["box"], options)
        crops.append(LabelledCrop(crop, entry["defect_type"], entry["severity"]))
    return crops
