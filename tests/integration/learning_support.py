"""Verified decisions over synthetic garment photos, for the learning-loop tests.

Each synthetic sample becomes an inspection with one photo (PNG bytes in the object
store under their content hash, as uploads are stored), model regions, a decided review
task and a decision in effect whose region answers carry the planted defects: exactly
the rows a real review leaves behind, written directly so the tests do not depend on
the review page's code paths.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from app.auth.tables import User
from app.config import Settings
from app.db import utcnow
from app.inspections.tables import Inspection, Photo, Region
from app.review.tables import Decision, DecisionRegion, ReviewTask
from app.storage import ObjectStore
from models.contracts import Box
from models.training.synthetic import Sample


def make_user(session: Session, name: str | None = None) -> User:
    user = User(username=name or f"insp-{uuid.uuid4().hex[:8]}", password_hash="!", role="ml")
    session.add(user)
    session.flush()
    return user


def item_id(sample: Sample) -> uuid.UUID:
    """The inspection id of a synthetic sample: fixed, so its split is too."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"loupe-test:{sample.id}")


def png(sample: Sample) -> bytes:
    buffer = io.BytesIO()
    sample.image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Seeded:
    inspection_id: uuid.UUID
    decision_id: int
    photo_key: str


def seed_item(
    session: Session,
    store: ObjectStore,
    sample: Sample,
    user: User,
    *,
    model_types: Sequence[str] | None = None,
    verdict: str | None = None,
    model_verdict: str | None = "same",
    false_alarm: str | None = None,
    decided_at: datetime | None = None,
    draw_boxes: bool = True,
) -> Seeded:
    """One reviewed garment: the model proposed a region per planted defect (typed as
    model_types says, else right), the human kept each box with its true type.

    verdict: the human's (default: reject if a defect was planted, else pass);
    model_verdict: "same" agrees with the human, None means no model result;
    false_alarm: a model region of that type the human marked "not a defect";
    draw_boxes=False: the human decided without leaving any box.
    """
    decided_at = decided_at or utcnow()
    data = png(sample)
    digest = hashlib.sha256(data).hexdigest()
    key = f"{digest[:2]}/{digest}.png"
    store.put(key, data, "image/png")
    verdict = verdict or ("reject" if sample.annotations else "pass")
    inspection = Inspection(
        id=item_id(sample),
        station="dock-1", status="routed", route="review", route_reason="uncertain",
        verdict=verdict, confidence=0.8, detector_version="det-1", classifier_version="cls-1",
        prompt_version="v2", created_at=decided_at - timedelta(minutes=5),
    )  # fmt: skip
    inspection.photos.append(
        Photo(position=0, view="front", object_key=key, content_hash=digest,
              content_type="image/png", size_bytes=len(data), width=sample.image.width,
              height=sample.image.height)
    )  # fmt: skip
    session.add(inspection)
    session.flush()
    photo = inspection.photos[0]
    task = ReviewTask(
        inspection_id=inspection.id, reason="uncertain", confidence=0.8, priority_key=0,
        due_at=decided_at, decided_at=decided_at, created_at=decided_at - timedelta(minutes=5),
    )  # fmt: skip
    session.add(task)
    session.flush()
    decision = Decision(
        review_task_id=task.id, inspection_id=inspection.id, user_id=user.id, verdict=verdict,
        attempt=0, model_verdict=verdict if model_verdict == "same" else model_verdict,
        created_at=decided_at,
    )  # fmt: skip
    types = list(model_types or [a.label for a in sample.annotations])
    planted = sample.annotations if draw_boxes else ()
    for annotation, model_type in zip(planted, types, strict=False):
        region = _region(inspection, photo, annotation.box, model_type)
        session.add(region)
        session.flush()
        outcome = "confirmed" if model_type == annotation.label else "changed"
        decision.regions.append(_answer(region, photo, annotation.box, annotation.label, outcome))
    if false_alarm:
        box = Box(1.0, 1.0, 9.0, 9.0)
        region = _region(inspection, photo, box, false_alarm)
        session.add(region)
        session.flush()
        decision.regions.append(_answer(region, photo, box, "normal", "not_defect"))
    session.add(decision)
    session.flush()
    task.decision_id = decision.id
    session.flush()
    return Seeded(inspection.id, decision.id, key)


def seed_many(
    session: Session, store: ObjectStore, samples: Sequence[Sample], user: User, **options: object
) -> list[Seeded]:
    return [seed_item(session, store, s, user, **options) for s in samples]  # type: ignore[arg-type]


def _region(inspection: Inspection, photo: Photo, box: Box, defect_type: str) -> Region:
    return Region(
        inspection_id=inspection.id, photo_id=photo.id, x1=box.x1, y1=box.y1, x2=box.x2,
        y2=box.y2, detector_score=0.9, defect_type=defect_type, severity="moderate",
        confidence=0.8,
    )  # fmt: skip


def _answer(
    region: Region, photo: Photo, box: Box, defect_type: str, outcome: str
) -> DecisionRegion:
    return DecisionRegion(
        region_id=region.id, photo_id=photo.id, x1=box.x1, y1=box.y1, x2=box.x2, y2=box.y2,
        defect_type=defect_type, severity=None if defect_type == "normal" else "moderate",
        outcome=outcome,
    )  # fmt: skip


def s3_settings(endpoint: str, bucket: str, var_dir: Path, **overrides: object) -> Settings:
    """Settings on moto's S3 with small learning-loop numbers, as a test site would set them."""
    values: dict[str, object] = {
        "s3_bucket": bucket,
        "s3_endpoint_url": endpoint,
        "s3_access_key_id": "testing",
        "s3_secret_access_key": "testing",
        "var_dir": var_dir,
        "retrain_min_samples": 4,
        "retrain_min_per_class": 1,
        "retrain_val_share": 0.25,
        "retrain_steps": 3,
        "retrain_batch_size": 2,
        "retrain_warmup_steps": 1,
        "retrain_progress_every_s": 0.0,
        "detector_threshold": 0.0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def new_bucket(endpoint: str) -> str:
    import boto3

    name = f"learning-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def tiny_typed_detector(path: Path, size: int = 64) -> Path:
    """The tiny RT-DETR with the four synthetic defect classes, its processor at `size`."""
    from transformers import RTDetrImageProcessorPil

    from models.tiny import build_tiny_detector
    from models.training.synthetic import DEFECT_CLASSES

    build_tiny_detector(path, dict(enumerate(DEFECT_CLASSES)))
    RTDetrImageProcessorPil(size={"height": size, "width": size}).save_pretrained(path)
    return path
