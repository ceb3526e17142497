"""The station API on a real PostgreSQL: validation, idempotency, one transaction."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.auth.service import create_station_token
from app.config import Settings
from app.db import get_session
from app.deps import request_settings
from app.inspections import service, views
from app.inspections.tables import Inspection, Photo, Region
from app.inspections.validation import CheckedImage, check_image
from app.outbox import Outbox
from app.review.decisions import decide
from app.review.service import claim_next
from app.storage import LocalStore
from tests.integration.review_support import make_review_item, make_user
from tests.support import garment_photo, reset_caches

pytestmark = pytest.mark.integration


@pytest.fixture
def api(db_session, tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_STORAGE_DIR", str(tmp_path / "photos"))
    monkeypatch.setenv("LOUPE_SECRET_KEY", "test-secret-key")
    reset_caches()
    from app.web import create_app

    app = create_app()
    app.dependency_overrides[get_session] = lambda: db_session
    small_uploads = Settings(max_upload_bytes=2_000_000)
    app.dependency_overrides[request_settings] = lambda: small_uploads
    token = create_station_token(session=db_session, station="dock-3")
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {token}"
    yield client
    reset_caches()


def count(session, table) -> int:
    return session.scalar(select(func.count()).select_from(table))


def upload(client, *photos: bytes, **form):
    files = [("image", (f"p{i}.png", data, "image/png")) for i, data in enumerate(photos)]
    return client.post("/api/v1/inspections", files=files, data=form)


def test_upload_commits_inspection_photo_and_outbox_together(api, db_session, tmp_path):
    response = upload(api, garment_photo(), external_id="RMA-1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["status_url"].endswith(f"/api/v1/inspections/{body['id']}")
    photo = db_session.scalar(select(Photo))
    assert (photo.width, photo.height) == (320, 240)
    assert (tmp_path / "photos" / photo.object_key).read_bytes() == garment_photo()
    outbox = db_session.scalar(select(Outbox))
    # The upload's request id rides along, for the worker's log lines (workers/relay.py).
    request_id = response.headers["x-request-id"]
    assert outbox.payload == {"inspection_id": body["id"], "request_id": request_id}
    assert outbox.sent_at is None

    status = api.get(body["status_url"]).json()
    assert (status["status"], status["route"], status["regions"]) == ("queued", None, [])
    assert status["external_id"] == "RMA-1" and status["station"] == "dock-3"


def test_several_photos_with_views(api, db_session):
    response = upload(api, garment_photo(seed=1), garment_photo(seed=2), view=["front", "back"])
    assert response.status_code == 201, response.text
    photos = db_session.scalars(select(Photo).order_by(Photo.position)).all()
    assert [p.view for p in photos] == ["front", "back"]


def test_same_external_id_or_idempotency_key_returns_the_existing_inspection(api, db_session):
    first = upload(api, garment_photo(), external_id="RMA-7")
    again = upload(api, garment_photo(seed=3), external_id="RMA-7")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]

    key = {"Idempotency-Key": "abc-123"}
    files = [("image", ("a.png", garment_photo(), "image/png"))]
    one = api.post("/api/v1/inspections", files=files, headers=key)
    two = api.post("/api/v1/inspections", files=files, headers=key)
    assert (one.status_code, two.status_code) == (201, 200)
    assert one.json()["id"] == two.json()["id"]
    assert count(db_session, Inspection) == 2
    assert count(db_session, Outbox) == 2


def test_an_upload_that_loses_the_race_for_its_key_answers_with_the_winner(
    db_session, tmp_path, monkeypatch
):
    """Two uploads with one key at once: both look, find nothing, and insert; the unique
    index refuses the second, which answers with the first's inspection and leaves none of
    its own rows (its photos and outbox row are in the same statement as its inspection)."""
    store = LocalStore(tmp_path)
    winner = service.accept(session=db_session, store=store, station="dock-3",
                            images=[checked(garment_photo())], views=[None],
                            idempotency_key="k-1")  # fmt: skip
    real_lookup, lookups = service.find_existing, []

    def looked_before_the_winner_committed(**kw):  # type: ignore[no-untyped-def]
        lookups.append(kw)
        return None if len(lookups) == 1 else real_lookup(**kw)

    monkeypatch.setattr(service, "find_existing", looked_before_the_winner_committed)
    loser = service.accept(session=db_session, store=store, station="dock-3",
                           images=[checked(garment_photo(seed=3))], views=[None],
                           idempotency_key="k-1")  # fmt: skip
    assert (winner.created, loser.created) == (True, False)
    assert (loser.inspection_id, loser.status) == (winner.inspection_id, "queued")
    assert len(lookups) == 2
    assert (count(db_session, Inspection), count(db_session, Photo)) == (1, 1)
    assert count(db_session, Outbox) == 1


def checked(data: bytes) -> CheckedImage:
    return check_image(data, filename="p.png", max_bytes=10**7, max_pixels=10**8)


@pytest.mark.parametrize(
    ("files", "status", "words"),
    [
        ([("image", ("x.jpg", b"hello, I am text", "image/jpeg"))], 415, "not an image"),
        ([("image", ("x.png", b"", "image/png"))], 400, "empty"),
        ([("image", ("x.png", garment_photo()[:300], "image/png"))], 400, "truncated"),
        ([("image", ("x.png", b"\x89PNG" + b"0" * 2_000_001, "image/png"))], 413, "limit"),
        ([("photo", ("x.png", garment_photo(), "image/png"))], 400, "'image'"),
        ([], 400, "'image'"),
    ],
)
def test_bad_uploads_get_a_clear_4xx_and_create_nothing(api, db_session, files, status, words):
    response = api.post("/api/v1/inspections", files=files or None, data={"station": "x"})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert count(db_session, Inspection) == 0
    assert count(db_session, Outbox) == 0


@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", "Basic abc", "Bearer "])
def test_a_missing_or_wrong_token_is_refused(api, db_session, auth):
    headers = {"Authorization": auth} if auth else {}
    if auth is None:
        del api.headers["Authorization"]
    files = [("image", ("a.png", garment_photo(), "image/png"))]
    response = api.post("/api/v1/inspections", files=files, headers=headers)
    assert response.status_code == 401
    assert "token" in response.json()["detail"]
    assert count(db_session, Inspection) == 0


def test_unknown_inspection_is_404(api):
    response = api.get("/api/v1/inspections/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert api.get("/api/v1/inspections/not-a-uuid").status_code == 422


HOLD_S = 5.0  # long enough to tell "answered meanwhile" from "answered after"


def test_a_page_answers_while_a_photo_is_being_checked(api, monkeypatch):
    """An upload's slow part (decoding a 12 MP photo) must not stall the process's other
    requests: with the photo check held, the login page still answers at once. On the event
    loop (the route as `async def`), the page waited for the check to end."""
    entered, release = threading.Event(), threading.Event()
    real_check = views.check_image

    def slow_check(data, **limits):
        entered.set()
        release.wait(HOLD_S)  # a fake of the decode's time only; the real check follows
        return real_check(data, **limits)

    monkeypatch.setattr(views, "check_image", slow_check)

    async def page_during_upload() -> tuple[httpx.Response, float, bool, httpx.Response]:
        # One event loop for both requests, as in one uvicorn process.
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://loupe") as client:
            files = [("image", ("p.png", garment_photo(), "image/png"))]
            headers = {"Authorization": api.headers["Authorization"]}
            upload = asyncio.create_task(
                client.post("/api/v1/inspections", files=files, headers=headers)
            )
            try:
                deadline = time.monotonic() + HOLD_S
                while not entered.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                assert entered.is_set(), "the upload never reached the photo check"
                started = time.monotonic()
                page = await client.get("/login")
                waited = time.monotonic() - started
                held_meanwhile = not upload.done()
            finally:
                release.set()
            return page, waited, held_meanwhile, await upload

    page, waited, held_meanwhile, uploaded = asyncio.run(page_during_upload())
    assert page.status_code == 200
    assert held_meanwhile, "the page was answered only after the photo check had ended"
    assert waited < HOLD_S / 2
    assert uploaded.status_code == 201, uploaded.text


def test_a_token_reads_only_its_own_stations_inspections(api, db_session):
    created = upload(api, garment_photo(), external_id="RMA-7").json()
    assert api.get(f"/api/v1/inspections/{created['id']}").status_code == 200
    other = create_station_token(session=db_session, station="dock-4")
    headers = {"Authorization": f"Bearer {other}"}
    answer = api.get(f"/api/v1/inspections/{created['id']}", headers=headers)
    assert answer.status_code == 404, "a second station read the first station's inspection"


def test_the_form_names_a_camera_under_the_token_never_another_station(api, db_session):
    first = upload(api, garment_photo(), station="cam-2", external_id="RMA-8")
    assert first.status_code == 201
    claimed = upload(api, garment_photo(seed=1), station="dock-4", external_id="RMA-8")
    assert claimed.status_code == 201, "dock-3 naming dock-4 is its own camera, a new item"
    stations = db_session.scalars(select(Inspection.station).order_by(Inspection.created_at))
    assert stations.all() == ["dock-3/cam-2", "dock-3/dock-4"]
    # dock-4's own token neither reads dock-3's items nor replays their external ids.
    dock4 = {
        "Authorization": f"Bearer {create_station_token(session=db_session, station='dock-4')}"
    }
    assert api.get(f"/api/v1/inspections/{claimed.json()['id']}", headers=dock4).status_code == 404
    again = api.post(
        "/api/v1/inspections",
        files=[("image", ("p.png", garment_photo(seed=2), "image/png"))],
        data={"external_id": "RMA-8"},
        headers=dock4,
    )
    assert again.status_code == 201 and again.json()["id"] != claimed.json()["id"]
    assert api.get(f"/api/v1/inspections/{first.json()['id']}").status_code == 200


def test_a_camera_name_that_does_not_fit_the_column_is_a_clear_400(api):
    response = upload(api, garment_photo(), station="c" * 120)
    assert response.status_code == 400
    assert "longer than 100" in response.json()["detail"]


def test_a_station_name_with_a_slash_is_refused(db_session):
    from app.auth.service import InvalidInput

    with pytest.raises(InvalidInput, match="without '/'"):
        create_station_token(session=db_session, station="dock-3/cam-1")


def test_the_inspection_says_who_decided_what_in_the_end(api, db_session):
    task = make_review_item(db_session, regions_per_photo=2, severity="minor", station="dock-3")
    url = f"/api/v1/inspections/{task.inspection_id}"
    assert api.get(url).json()["outcome"] is None, "an item waiting for review is not decided"
    first, second = db_session.scalars(select(Region).order_by(Region.id)).all()
    alice = make_user(db_session)
    claim_next(session=db_session, user_id=alice.id, lease_seconds=600)
    decide(
        session=db_session, task_id=task.id, user_id=alice.id, verdict="reject",
        region_edits=[
            {"region": first.id, "type": "hole", "severity": "severe"},
            {"region": second.id, "not_defect": True},
            {"photo": first.photo_id, "box": [5, 5, 60, 70], "type": "tear", "severity": "minor"},
        ],
    )  # fmt: skip
    outcome = api.get(url).json()["outcome"]
    assert (outcome["decided_by"], outcome["verdict"], outcome["model_verdict"]) == (
        "inspector", "reject", "pass",
    )  # fmt: skip
    finals = sorted((r["defect_type"], r["severity"], r["box"]["x1"]) for r in outcome["regions"])
    assert finals == [("hole", "severe", first.x1), ("tear", "minor", 5.0)]

    automatic = upload(api, garment_photo(seed=3)).json()
    row = db_session.get(Inspection, automatic["id"])
    row.status, row.route, row.verdict, row.routed_at = (
        "routed",
        "auto_pass",
        "pass",
        row.created_at,
    )
    db_session.commit()
    outcome = api.get(f"/api/v1/inspections/{automatic['id']}").json()["outcome"]
    assert (outcome["decided_by"], outcome["verdict"], outcome["regions"]) == ("model", "pass", [])
