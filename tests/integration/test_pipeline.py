"""The inspection loop on real parts: outbox -> Redis -> Celery worker -> Ray Serve -> route."""

from __future__ import annotations

import socket
import uuid

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from sqlalchemy import select

from app.db import session_scope
from app.inspections import service
from app.inspections.tables import Inspection
from app.inspections.validation import check_image
from app.outbox import Outbox
from app.review.tables import ReviewTask
from app.storage import get_store
from tests.support import garment_photo, reset_caches, wait_for
from workers.relay import celery_publish, relay_pending

pytestmark = pytest.mark.integration


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/inspection"


@pytest.fixture
def pipeline_env(committed_db, redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_STORAGE_DIR", str(tmp_path / "photos"))
    monkeypatch.setenv("LOUPE_INFERENCE_RETRY_BACKOFF_S", "0.05")
    monkeypatch.setenv("LOUPE_INFERENCE_MAX_RETRIES", "2")
    monkeypatch.setenv("LOUPE_AUDIT_RATE", "0")
    reset_caches()
    yield monkeypatch
    reset_caches()


@pytest.fixture
def worker(pipeline_env, redis_url):
    from workers.celery_app import celery

    celery.conf.broker_url = redis_url
    with start_worker(celery, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield celery


def submit(photo_count: int = 1) -> uuid.UUID:
    images = [
        check_image(garment_photo(seed=i), filename="p.png", max_bytes=10**7, max_pixels=10**8)
        for i in range(photo_count)
    ]
    with session_scope() as session:
        accepted = service.accept(
            session=session,
            store=get_store(),
            station="dock-1",
            images=images,
            views=[None] * photo_count,
        )
        return accepted.inspection_id


def relay_all() -> int:
    with session_scope() as session:
        return relay_pending(session=session, publish=celery_publish)


def routed(inspection_id: uuid.UUID) -> Inspection | None:
    with session_scope() as session:
        inspection = service.get(session=session, inspection_id=inspection_id)
        return inspection if inspection and inspection.status == "routed" else None


def test_an_upload_is_inferred_and_routed_by_real_models(pipeline_env, serve_url, worker):
    pipeline_env.setenv("LOUPE_SERVE_URL", serve_url)
    # Everything the detector finds goes to review, so the review path is exercised.
    pipeline_env.setenv("LOUPE_DETECTOR_THRESHOLD", "0.0")
    pipeline_env.setenv("LOUPE_THRESHOLD_LOW", "0.0")
    reset_caches()
    inspection_id = submit(photo_count=2)
    assert relay_all() == 1
    inspection = wait_for(lambda: routed(inspection_id), timeout=120)
    assert inspection.route == "review" and inspection.route_reason == "uncertain"
    assert inspection.detector_version and inspection.classifier_version
    assert inspection.arm in ("champion", "challenger")
    assert inspection.prompt_version == "v2+x1+t2024.1"
    assert inspection.regions, "the tiny detector at threshold 0 must propose regions"
    photo_ids = {p.id for p in inspection.photos}
    for region in inspection.regions:
        assert region.photo_id in photo_ids
        assert 0 <= region.x1 <= region.x2 <= 320 and 0 <= region.y1 <= region.y2 <= 240
        assert 0.0 <= region.confidence <= 1.0
        assert sum(region.evidence["type_distribution"].values()) == pytest.approx(1.0, abs=1e-3)
        assert sum(region.evidence["final_distribution"].values()) == pytest.approx(1.0, abs=1e-3)
        assert region.evidence["candidate_type"] in region.evidence["type_distribution"]
        # A review item's reasons come from the second (explain) call, and it worked.
        assert "reason_error" not in region.evidence
    assert any(region.reason for region in inspection.regions)
    with session_scope() as session:
        task = session.scalar(select(ReviewTask).where(ReviewTask.inspection_id == inspection_id))
        assert task is not None and task.decided_at is None


def test_a_site_without_a_detector_sends_whole_photos_to_review(
    pipeline_env, cold_start_url, worker
):
    pipeline_env.setenv("LOUPE_SERVE_URL", cold_start_url)
    reset_caches()
    inspection_id = submit(photo_count=2)
    relay_all()
    inspection = wait_for(lambda: routed(inspection_id), timeout=120)
    assert (inspection.route, inspection.route_reason) == ("review", "cold_start")
    assert inspection.detector_version is None
    assert [(r.x1, r.y1, r.x2, r.y2) for r in inspection.regions] == [(0, 0, 320, 240)] * 2
    assert all(r.evidence["whole_image"] and r.detector_score == 1.0 for r in inspection.regions)


def test_serve_down_retries_then_sends_to_review_never_auto_pass(pipeline_env, worker):
    pipeline_env.setenv("LOUPE_SERVE_URL", closed_port_url())
    reset_caches()
    inspection_id = submit()
    relay_all()
    inspection = wait_for(lambda: routed(inspection_id), timeout=60)
    assert (inspection.route, inspection.route_reason) == ("review", "inference_unavailable")
    assert inspection.verdict is None
    assert "InferenceUnavailable" in inspection.inference_error
    with session_scope() as session:
        task = session.scalar(select(ReviewTask).where(ReviewTask.inspection_id == inspection_id))
        assert task.reason == "inference_unavailable" and task.confidence == 0.0


def test_a_duplicate_delivery_routes_the_item_once(pipeline_env, serve_url, worker):
    from workers.tasks.inference import run_inference

    pipeline_env.setenv("LOUPE_SERVE_URL", serve_url)
    reset_caches()
    inspection_id = submit()
    relay_all()
    first = wait_for(lambda: routed(inspection_id), timeout=120)
    # The same message again, as a broker may deliver it after a worker crash.
    assert run_inference.apply(args=[str(inspection_id)]).get() == "already routed"
    again = routed(inspection_id)
    assert again.routed_at == first.routed_at
    assert len(again.regions) == len(first.regions)


def publisher(broker_url: str):
    app = Celery(broker=broker_url)
    app.conf.broker_connection_timeout = 1

    def publish(task: str, payload: dict, message_id: str) -> None:
        app.send_task(task, kwargs=payload, task_id=message_id, retry=False)

    return publish


def test_redis_outage_at_upload_loses_nothing(pipeline_env, redis_url):
    inspection_id = submit()  # the upload itself never touches Redis
    with session_scope() as session:
        assert relay_pending(session=session, publish=publisher("redis://127.0.0.1:1/0")) == 0
    with session_scope() as session:
        row = session.scalar(select(Outbox))
        assert row.sent_at is None and row.attempts == 1 and "127.0.0.1:1" in row.last_error
    with session_scope() as session:  # Redis is back
        assert relay_pending(session=session, publish=publisher(redis_url)) == 1
    with session_scope() as session:
        assert session.scalar(select(Outbox)).sent_at is not None
        assert session.get(Inspection, inspection_id).status == "queued"
