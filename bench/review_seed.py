"""Seed a database with inspectors and review items (photos, regions, queued tasks) in bulk.

Used by bench/review_decide.py; also handy to try the review page with a full queue:

    .venv/bin/python bench/review_seed.py postgresql+psycopg://.../loupe --items 500
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.auth.tables import User  # noqa: E402
from app.db import utcnow  # noqa: E402
from app.inspections.tables import Inspection, Photo, Region  # noqa: E402
from app.review.priority import SEVERITY_RANK, priority_key  # noqa: E402
from app.review.tables import ReviewTask  # noqa: E402

TYPES = ("stain", "tear", "hole", "pilling", "snag", "print_damage", "seam_open")
SEVERITIES = ("minor", "moderate", "severe")
SLA = 4 * 3600


def _rows(n: int, rng: random.Random, region_count: int | None = None):
    now = utcnow()
    inspections, photos, regions, tasks = [], [], [], []
    for i in range(n):
        inspection_id = uuid.uuid4()
        created = now - timedelta(seconds=rng.uniform(0, SLA / 2))
        confidence = rng.uniform(0.70, 0.95)
        inspections.append({
            "id": inspection_id, "station": "bench", "external_id": f"RMA-{i:06d}",
            "status": "routed", "route": "review", "route_reason": "uncertain",
            "confidence": confidence, "is_audit": False, "detector_version": "det-bench",
            "classifier_version": "cls-bench", "prompt_version": "v1", "created_at": created,
            "status_changed_at": created,
        })  # fmt: skip
        for position in range(rng.choice((1, 1, 2))):
            photos.append({
                "inspection_id": inspection_id, "position": position, "view": "front",
                "object_key": f"bench/{i}-{position}.jpg", "content_hash": "0" * 64,
                "content_type": "image/jpeg", "size_bytes": 1, "width": 1024, "height": 768,
            })  # fmt: skip
        severity = rng.choice(SEVERITIES)
        count = region_count if region_count is not None else rng.randint(1, 4)
        regions.append((inspection_id, count, severity, confidence))
        tasks.append({
            "inspection_id": inspection_id, "reason": "uncertain", "is_audit": False,
            "confidence": confidence, "severity_rank": SEVERITY_RANK[severity],
            "priority_key": priority_key(confidence=confidence, created_at=created,
                                         sla_seconds=SLA, aging_weight=1.0),
            "created_at": created, "due_at": created + timedelta(seconds=SLA), "attempt": 0,
        })  # fmt: skip
    return inspections, photos, regions, tasks


def _region_rows(regions, photo_ids: dict, rng: random.Random) -> list[dict]:
    rows = []
    for inspection_id, count, severity, confidence in regions:
        for k in range(count):
            x, y = rng.uniform(0, 800), rng.uniform(0, 600)
            rows.append({
                "inspection_id": inspection_id, "photo_id": photo_ids[inspection_id],
                "x1": x, "y1": y, "x2": x + 120, "y2": y + 90, "detector_score": 0.9,
                "defect_type": rng.choice(TYPES), "severity": severity if k == 0 else "minor",
                "confidence": confidence if k == 0 else rng.uniform(0.3, 0.95),
                "reason": "A dark irregular mark on the fabric near the seam.",
                "evidence": {"type_distribution": {"stain": 0.6, "tear": 0.3, "hole": 0.1}},
            })  # fmt: skip
    return rows


def seed(
    url: str, *, items: int, inspectors: int, password: str, seed: int = 7,
    regions: int | None = None,
) -> None:  # fmt: skip
    """Insert `inspectors` users bench-0.. and `items` queued review items, each with
    `regions` regions (default: 1 to 4)."""
    from argon2 import PasswordHasher

    rng = random.Random(seed)
    password_hash = PasswordHasher().hash(password)
    inspections, photos, regions, tasks = _rows(items, rng, regions)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(insert(User), [
            {"username": f"bench-{i}", "password_hash": password_hash, "role": "inspector",
             "language": "en", "is_active": True, "key_bindings": {},
             "keyboard_layout": "qwerty", "created_at": utcnow()}
            for i in range(inspectors)
        ])  # fmt: skip
        conn.execute(insert(Inspection), inspections)
        first_photo = {}
        for row in conn.execute(insert(Photo).returning(Photo.id, Photo.inspection_id), photos):
            first_photo.setdefault(row.inspection_id, row.id)
        conn.execute(insert(Region), _region_rows(regions, first_photo, rng))
        conn.execute(insert(ReviewTask), tasks)
    engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--inspectors", type=int, default=4)
    parser.add_argument("--password", default="bench-password-1")
    parser.add_argument("--regions", type=int, default=None, help="per item (default 1-4)")
    args = parser.parse_args()
    seed(args.database_url, items=args.items, inspectors=args.inspectors, password=args.password,
         regions=args.regions)  # fmt: skip
