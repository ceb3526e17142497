"""`loupe import` on a real PostgreSQL, photos in moto's S3 or a local store: verified
history the learning code sees, idempotency, dry runs that change nothing, photos sent
to the models through the outbox, and imported labels that are nobody's work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cli import main
from app.config import get_settings
from app.db import utcnow
from app.feedback.tables import ErrorCase
from app.inspections.tables import Inspection, Photo
from app.learning.crops import build_crops_manifest
from app.learning.verified import count_new_samples, verified_photos
from app.outbox import Outbox
from app.review.tables import Decision, DecisionRegion, ReviewTask
from app.storage import make_store
from app.task_names import RUN_INFERENCE
from tests.integration.learning_support import new_bucket
from tests.support import reset_caches
from tests.unit.imports_support import photo, roboflow_yolo, write, write_json

pytestmark = pytest.mark.integration

TABLES = (Inspection, Photo, ReviewTask, Decision, DecisionRegion, Outbox, ErrorCase)


def loupe_import(*args: object) -> str:
    result = CliRunner().invoke(main, ["import", *(str(a) for a in args)])
    assert result.exit_code in (0, 1), result.output
    return f"exit {result.exit_code}\n{result.output}"


def row_counts(session):
    session.rollback()  # a fresh snapshot: the command committed on its own connection
    return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in TABLES}


@pytest.fixture
def s3_store(s3_endpoint, committed_db, monkeypatch):
    """The command line's settings point at a fresh bucket of moto's S3."""
    monkeypatch.setenv("LOUPE_S3_BUCKET", new_bucket(s3_endpoint))
    monkeypatch.setenv("LOUPE_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("LOUPE_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("LOUPE_S3_SECRET_ACCESS_KEY", "testing")
    reset_caches()
    yield make_store(get_settings())
    monkeypatch.undo()
    reset_caches()


def site_history(root: Path) -> Path:
    return roboflow_yolo(root, ["Hole", "Knot", "stain"], {
        "train": {"a": "0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.5 0.5\n", "b": ""},
        "val": {"c": "2 0.5 0.5 0.5 0.5\n"},
    })  # fmt: skip


def test_verified_history_becomes_samples_and_crops_and_imports_once(
    committed_db, s3_store, tmp_path
):
    root = site_history(tmp_path / "site")
    args = ["yolo", root, "--map", "Knot=snag", "--name", "site-2024", "--var-dir", tmp_path]
    out = loupe_import(*args)
    assert "exit 0" in out and "importing as verified (it has labels" in out
    assert "imported 3, already present 0, refused 0" in out
    assert "boxes per type: hole 1, snag 1, stain 1" in out and "clean garments (no box): 1" in out

    # The learning loop sees three samples, with every box to the pixel (64x48 photos).
    samples = verified_photos(session=committed_db)
    names = dict(committed_db.execute(select(Inspection.id, Inspection.external_id)).all())
    boxes = {names[s.inspection_id]: [(b.label, b.x1, b.y1, b.x2, b.y2) for b in s.boxes]
             for s in samples}  # fmt: skip
    assert boxes == {
        "train/images/a.jpg": [("hole", 24.0, 12.0, 40.0, 36.0), ("snag", 0.0, 0.0, 32.0, 24.0)],
        "train/images/b.jpg": [],
        "valid/images/c.jpg": [("stain", 16.0, 12.0, 48.0, 36.0)],
    }
    assert count_new_samples(session=committed_db, after_decision_id=None) == 3
    crops = build_crops_manifest(session=committed_db, limit=100)["crops"]
    assert sorted(c["defect_type"] for c in crops) == ["hole", "snag", "stain"]
    # The very bytes, in the store, under the content-addressed key.
    sample = next(s for s in samples if names[s.inspection_id] == "valid/images/c.jpg")
    assert s3_store.get(sample.object_key) == (root / "valid/images/c.jpg").read_bytes()

    # Recorded with their source; nobody's decision, no model's, no error case, no inference.
    items = committed_db.scalars(select(Inspection)).all()
    assert {(i.source, i.station, i.status, i.route) for i in items} == {
        ("import:site-2024", "import:site-2024", "routed", None)
    }
    decisions = committed_db.scalars(select(Decision)).all()
    assert {(d.user_id, d.model_verdict) for d in decisions} == {(None, None)}
    assert sorted(d.verdict for d in decisions) == ["pass", "reject", "reject"]
    counts = row_counts(committed_db)
    assert counts["error_case"] == 0 and counts["outbox"] == 0

    again = loupe_import(*args)
    assert "imported 0, already present 3, refused 0" in again
    assert row_counts(committed_db) == counts


def test_dry_run_reports_duplicates_and_bad_files_and_changes_nothing(committed_db, tmp_path):
    flat = tmp_path / "flat"
    first = photo(flat / "a.jpg")
    (flat / "a-copy.jpg").write_bytes(first.read_bytes())
    photo(flat / "broken.jpg", shade=1)
    (flat / "broken.jpg").write_bytes((flat / "broken.jpg").read_bytes()[:200])
    for stem in ("a", "a-copy", "broken"):
        write(flat / f"{stem}.txt", "0 0.5 0.5 0.5 0.5\n")
    args = ["yolo", flat, "--names", "tear", "--var-dir", tmp_path / "var"]
    before = row_counts(committed_db)

    dry = loupe_import(*args, "--dry-run")
    assert "would import 1, already present 0, refused 1, duplicates 1 (dry run" in dry
    assert "duplicate a.jpg: the same bytes as a-copy.jpg" in dry
    assert "refused broken.jpg: the file is not an image Loupe can read" in dry
    assert "exit 1" in dry  # something would be refused
    assert row_counts(committed_db) == before
    assert not (tmp_path / "var" / "photos").exists()

    loupe_import(*args)
    assert row_counts(committed_db)["decision"] == before["decision"] + 1
    assert "would import 0, already present 1, refused 1, duplicates 1" in loupe_import(
        *args, "--dry-run"
    )


def test_a_store_that_fails_stops_the_import_and_a_rerun_finishes_it(
    committed_db, s3_store, monkeypatch, tmp_path
):
    root = site_history(tmp_path / "site")
    args = ["yolo", root, "--map", "Knot=snag", "--var-dir", tmp_path]
    monkeypatch.setenv("LOUPE_S3_BUCKET", "no-such-bucket")
    reset_caches()
    stopped = loupe_import(*args)
    assert "imported 0, already present 0, refused 0" in stopped
    assert "stopped: NoSuchBucket" in stopped and "run the same command again" in stopped
    assert row_counts(committed_db)["inspection"] == 0  # the batch rolled back whole

    monkeypatch.setenv("LOUPE_S3_BUCKET", s3_store.bucket)
    reset_caches()
    assert "imported 3, already present 0, refused 0" in loupe_import(*args)


def test_photos_to_inspect_go_through_the_outbox_with_their_labels_kept(committed_db, tmp_path):
    photo(tmp_path / "returns" / "x.jpg")
    photo(tmp_path / "returns" / "y.jpg", shade=1)
    out = loupe_import("folders", tmp_path / "returns", "--var-dir", tmp_path / "var")
    assert "importing as inspect (it has no labels" in out and "imported 2," in out
    assert "sent to the models without labels: 2" in out

    coco = tmp_path / "coco"
    photo(coco / "z.jpg", shade=2)
    write_json(coco / "instances_val.json", {
        "images": [{"id": 1, "file_name": "z.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 4, 10.5, 8]}],
        "categories": [{"id": 3, "name": "Pilling"}],
    })  # fmt: skip
    assert "imported 1," in loupe_import(
        "coco", coco, "--as", "inspect", "--var-dir", tmp_path / "var"
    )

    items = committed_db.scalars(select(Inspection).order_by(Inspection.external_id)).all()
    assert [(i.external_id, i.status, i.source) for i in items] == [
        ("x.jpg", "queued", "import:returns"),
        ("y.jpg", "queued", "import:returns"),
        ("z.jpg", "queued", "import:coco"),
    ]
    assert [i.reference_labels for i in items[:2]] == [None, None]
    box = {"photo": 0, "type": "pilling", "severity": None, "box": [2.0, 4.0, 12.5, 12.0]}
    assert items[2].reference_labels == {"split": "val", "label": None, "boxes": [box]}
    # The worker's relay picks each up, as a station's upload.
    queued = committed_db.scalars(select(Outbox).where(Outbox.task == RUN_INFERENCE)).all()
    assert sorted(o.payload["inspection_id"] for o in queued) == sorted(str(i.id) for i in items)
    assert row_counts(committed_db)["decision"] == 0


def decided_then_imported(session, tmp_path):  # type: ignore[no-untyped-def]
    """alice confirms one stain in the queue, then a site's history of 3 items comes in."""
    from app.review.decisions import decide
    from app.review.service import claim_next
    from tests.integration.review_support import make_review_item, make_user

    alice = make_user(session, name="alice")
    task = make_review_item(session, defect_type="stain")
    session.commit()
    claim_next(session=session, user_id=alice.id, lease_seconds=300)
    decide(session=session, task_id=task.id, user_id=alice.id, verdict="confirm")
    assert "imported 3," in loupe_import("yolo", site_history(tmp_path / "s"), "--map",
                                         "Knot=snag", "--var-dir", tmp_path)  # fmt: skip
    session.rollback()
    return alice, task


def test_imported_labels_are_nobodys_work_and_no_models_disagreement(committed_db, tmp_path):
    from app.dashboard.report import ReportOptions, weekly_report
    from app.dashboard.weeks import Week
    from app.review import stats

    alice, _ = decided_then_imported(committed_db, tmp_path)

    now = utcnow()
    today = stats.inspectors_today(session=committed_db, now=now, timezone="UTC")
    assert [(d.username, d.decided) for d in today] == [("alice", 1)]
    assert [d.username for d in stats.recent_decisions(session=committed_db)] == ["alice"]
    numbers = stats.inspector_numbers(session=committed_db, user_id=alice.id, now=now,
                                      timezone="UTC")  # fmt: skip
    assert numbers.today == 1
    report = weekly_report(session=committed_db, week=Week.of(now, "UTC"),
                           options=ReportOptions("UTC", 3600, []), now=now)  # fmt: skip
    assert report["total_reviews"] == 1
    assert [i["user"] for i in report["inspectors"]] == ["alice"]
    # Only alice's answer is a judgement of the model; the imported boxes are not "missed".
    assert report["confusion"]["model_labels"] == ["stain"]
    assert [v["reviews"] for v in report["model_versions"]] == [1]
    # ... while the learning loop has all four items.
    assert count_new_samples(session=committed_db, after_decision_id=None) == 4


def test_the_warehouse_feed_lists_no_imported_label_and_the_api_says_where_one_came_from(
    committed_db, tmp_path
):
    """A site's history is no outcome a warehouse system waits for; read by id, an
    imported label says it was imported, not that an inspector decided it."""
    from app.inspections import listing
    from app.inspections.schemas import InspectionOut

    _, task = decided_then_imported(committed_db, tmp_path)

    feed = listing.page(session=committed_db, status="decided", after=None, station=None,
                        limit=50)  # fmt: skip
    assert [i.id for i, _ in feed.items] == [task.inspection_id]
    routed = listing.page(session=committed_db, status="routed", after=None, station=None,
                          limit=50)  # fmt: skip
    imported = [InspectionOut.of(i, d) for i, d in routed.items if i.source is not None]
    assert len(imported) == 3
    outcomes = [o.outcome for o in imported if o.outcome is not None]
    assert {o.decided_by for o in outcomes} == {"import"}
    assert {r.source for o in outcomes for r in o.regions} == {"import"}
