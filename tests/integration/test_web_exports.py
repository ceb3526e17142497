"""/ml/exports end to end: an ML user asks for an export, the outbox carries the job to the
Celery task (run here in-process), the page follows its progress by polling, and the
finished .zip comes back through the authenticated download with exactly the verified
boxes. Photos and archives live in moto's S3, rows in a real PostgreSQL.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import utcnow
from app.exports import jobs
from app.exports.formats import ROUND_TRIP_TOLERANCE_PX
from app.exports.tables import ExportJob
from app.outbox import Outbox
from app.storage import get_store
from app.task_names import EXPORT_DATASET
from tests.integration.export_support import read_coco, read_yolo, same_boxes, seed_verified
from tests.integration.learning_support import new_bucket
from tests.integration.web_support import HTMX, add_user, csrf_from, log_in
from tests.support import reset_caches

pytestmark = pytest.mark.integration


@pytest.fixture
def web(committed_db, s3_endpoint, monkeypatch):
    """The app as a site runs it: its own sessions on the test database, photos in S3."""
    env = {
        "LOUPE_S3_BUCKET": new_bucket(s3_endpoint),
        "LOUPE_S3_ENDPOINT_URL": s3_endpoint,
        "LOUPE_S3_ACCESS_KEY_ID": "testing",
        "LOUPE_S3_SECRET_ACCESS_KEY": "testing",
        "LOUPE_SECRET_KEY": "test-secret-key",
        "LOUPE_ENVIRONMENT": "development",
        "LOUPE_RETRAIN_VAL_SHARE": "0.25",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    from app.web import create_app

    client = TestClient(create_app(), follow_redirects=False)
    add_user(committed_db, role="ml")
    log_in(client, "ml-en")
    yield client, get_store()
    client.close()
    monkeypatch.undo()
    reset_caches()


def start(client: TestClient, **form: str):  # type: ignore[no-untyped-def]
    csrf = csrf_from(client.get("/ml/exports").text)
    return client.post("/ml/exports", data={**form, "csrf_token": csrf})


def run_outbox() -> list[str]:
    """The worker's way: the relay hands each outbox message to the registered task."""
    from app.db import session_scope
    from workers.relay import relay_pending
    from workers.tasks.exports import celery

    outcomes: list[str] = []

    def deliver(task: str, payload: dict, message_id: str) -> None:
        assert task == EXPORT_DATASET
        outcomes.append(celery.tasks[task].apply(kwargs=payload).get())

    with session_scope() as session:
        relay_pending(session=session, publish=deliver)
    return outcomes


def newest_job(session) -> ExportJob:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalars(select(ExportJob).order_by(ExportJob.id.desc())).first()


def unzip(data: bytes, into):  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(into)
        [top] = {name.split("/")[0] for name in archive.namelist()}
    return into / top


def test_an_export_is_built_in_the_background_and_downloaded(web, committed_db, tmp_path):
    client, store = web
    seeded = seed_verified(committed_db, store)
    committed_db.commit()
    page = client.get("/ml/exports")
    assert page.status_code == 200 and "The verified data now" in page.text
    assert 'hx-trigger="every 2s"' not in page.text  # nothing running: no polling

    asked = start(client, format="yolo", source="now", split="true")
    assert asked.status_code == 303 and asked.headers["location"] == "/ml/exports"
    job = newest_job(committed_db)
    assert (job.status, job.format, job.split, job.snapshot_id) == ("queued", "yolo", True, None)
    message = committed_db.scalars(select(Outbox).where(Outbox.task == EXPORT_DATASET)).one()
    assert message.payload == {"job_id": job.id}
    assert f"Export {job.id} is queued" in client.get("/ml/exports").text
    block = client.get("/ml/exports", headers=HTMX).text
    assert block.startswith('<section class="card-wide" id="export-jobs"')
    assert 'hx-trigger="every 2s"' in block and "waiting for a worker" in block
    # The same export asked for twice is one job.
    start(client, format="yolo", source="now", split="true")
    assert newest_job(committed_db).id == job.id
    assert "already being built" in client.get("/ml/exports").text
    assert client.get(f"/ml/exports/{job.id}/download").status_code == 404  # not built yet

    assert run_outbox() == ["succeeded"]
    job = newest_job(committed_db)
    assert job.status == "succeeded" and job.snapshot_id is not None  # "now" became a snapshot
    assert job.progress_done == job.progress_total == job.images == len(seeded.expected)
    assert job.archive_key == f"exports/{job.id}/loupe-yolo-snapshot-{job.snapshot_id}-split.zip"
    block = client.get("/ml/exports", headers=HTMX).text
    assert 'hx-trigger="every 2s"' not in block and f"/ml/exports/{job.id}/download" in block

    got = client.get(f"/ml/exports/{job.id}/download")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert (
        f'filename="loupe-yolo-snapshot-{job.snapshot_id}-split.zip"'
        in (got.headers["content-disposition"])
    )
    assert len(got.content) == job.size_bytes
    root = unzip(got.content, tmp_path / "yolo")
    names = __import__("yaml").safe_load((root / "data.yaml").read_text())["names"]
    found = {item: boxes for split in ("train", "val", "test")
             for item, boxes in read_yolo(root / split, names).items()}  # fmt: skip
    assert same_boxes(found, seeded.expected, ROUND_TRIP_TOLERANCE_PX)
    assert seeded.frozen in read_yolo(root / "test", names)

    # The snapshot it took is on offer, and exports again as COCO.
    assert f'<option value="{job.snapshot_id}">' in client.get("/ml/exports").text
    start(client, format="coco", source=str(job.snapshot_id))
    assert run_outbox() == ["succeeded"]
    coco = newest_job(committed_db)
    root = unzip(client.get(f"/ml/exports/{coco.id}/download").content, tmp_path / "coco")
    assert same_boxes(read_coco(root)[0], seeded.expected, ROUND_TRIP_TOLERANCE_PX)


def test_a_failed_export_says_why_and_offers_nothing(web, committed_db):
    client, store = web
    seed_verified(committed_db, store)
    committed_db.commit()
    start(client, format="labelstudio", source="now")
    key = _a_photo_key(committed_db)
    store.put(key, b"someone replaced this photo", "image/png")
    assert run_outbox() == ["failed"]
    job = newest_job(committed_db)
    assert job.status == "failed" and "PhotoChanged" in job.error and key in job.error
    assert job.archive_key is None
    page = client.get("/ml/exports").text
    assert "failed" in page and "PhotoChanged" in page
    assert client.get(f"/ml/exports/{job.id}/download").status_code == 404


def _a_photo_key(session) -> str:  # type: ignore[no-untyped-def]
    from app.inspections.tables import Photo

    return session.scalars(select(Photo.object_key).order_by(Photo.id)).first()


BAD_REQUESTS = {
    ("pascal", "now"): "must be one of: coco, yolo",
    ("coco", "424242"): "no detector dataset snapshot &#34;424242&#34;",
    ("coco", "<b>x</b>"): "&lt;b&gt;x&lt;/b&gt;",  # said back, escaped
    ("yolo", "\u00b2"): "no detector dataset snapshot",  # a digit to isdigit(), not to int()
    ("instructions", "ab" * 32): "no instruction snapshot",
}


def test_bad_requests_are_refused_with_the_reason(web, committed_db):
    from app.learning.crops import take_crops_snapshot
    from app.learning.runs import new_run

    client, store = web
    for (fmt, source), message in BAD_REQUESTS.items():
        refused = start(client, format=fmt, source=source)
        assert refused.status_code == 400 and message in refused.text, refused.text[-500:]
    # A classifier's crops snapshot is neither offered nor accepted.
    seed_verified(committed_db, store)
    crops = take_crops_snapshot(session=committed_db, store=store, limit=100)
    new_run(committed_db, "classifier", {"uri": "x", "prompt_version": "v2"}, crops.id, "cli",
            None, [], utcnow())  # fmt: skip
    committed_db.commit()
    assert f'<option value="{crops.id}">' not in client.get("/ml/exports").text
    refused = start(client, format="coco", source=str(crops.id))
    assert refused.status_code == 400 and "crops snapshot cannot be exported" in refused.text
    assert newest_job(committed_db) is None
    # The nav's tab for the page: ML users have it, and only it is current.
    page = client.get("/ml/exports").text
    assert re.search(r'<a href="/ml/exports" aria-current="page">Exports</a>', page)
    assert 'href="/ml/models" aria-current' not in page
    add_user(committed_db, role="inspector")
    inspector = TestClient(client.app, follow_redirects=False)
    log_in(inspector, "inspector-en")
    assert 'href="/ml/exports"' not in inspector.get("/review").text
    assert inspector.get("/ml/exports").status_code == 403


def test_a_job_whose_worker_died_is_taken_over_but_a_live_one_is_not(db_session):
    started = jobs.start_job(session=db_session, fmt="coco", user_id=None)
    job_id = started.job.id
    assert jobs.claim(session=db_session, job_id=job_id) is not None  # queued: taken
    assert jobs.claim(session=db_session, job_id=job_id) is None  # running and fresh
    later = utcnow() + jobs.STALE_AFTER + timedelta(seconds=1)
    assert jobs.is_stale(db_session.get(ExportJob, job_id), later)
    assert jobs.claim(session=db_session, job_id=job_id, now=later) is not None
    db_session.get(ExportJob, job_id).status = "succeeded"
    assert jobs.claim(session=db_session, job_id=job_id, now=later) is None
