"""GET /api/v1/inspections: pages in decision order for a warehouse system that polls."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app.auth.service import create_station_token
from app.db import get_session, utcnow
from app.inspections.tables import Inspection
from app.review.decisions import decide
from app.review.reopen import send_back
from app.review.service import claim_next
from tests.integration.review_support import make_review_item, make_user
from tests.support import garment_photo, reset_caches

pytestmark = pytest.mark.integration


@pytest.fixture
def client_for(db_session, tmp_path, monkeypatch):
    monkeypatch.setenv("LOUPE_STORAGE_DIR", str(tmp_path / "photos"))
    monkeypatch.setenv("LOUPE_SECRET_KEY", "test-secret-key")
    reset_caches()
    from app.web import create_app

    app = create_app()
    app.dependency_overrides[get_session] = lambda: db_session

    def make(station: str, scope: str = "station") -> TestClient:
        token = create_station_token(session=db_session, station=station, scope=scope)
        client = TestClient(app)
        client.headers["Authorization"] = f"Bearer {token}"
        return client

    yield make
    reset_caches()


def automatic(session, station: str, at, verdict: str = "pass") -> uuid.UUID:
    route = "auto_pass" if verdict == "pass" else "auto_reject"
    row = Inspection(station=station, status="routed", route=route, verdict=verdict,
                     routed_at=at, created_at=at - timedelta(seconds=5))  # fmt: skip
    session.add(row)
    session.commit()
    return row.id


def by_inspector(session, user, station: str, at, verdict: str = "reject") -> int:
    task = make_review_item(session, station=station)
    claimed = claim_next(session=session, user_id=user.id, lease_seconds=600, now=at)
    assert claimed is not None and claimed.id == task.id
    decide(session=session, task_id=task.id, user_id=user.id, verdict=verdict, now=at,
           unmarked=verdict == "reject")  # fmt: skip
    return task.id


def poll(client, after: str | None, limit: int, status: str = "decided") -> tuple[list, str]:
    """Every page from `after` on, until one is short; the items and the last cursor."""
    seen = []
    while True:
        params = {"limit": limit, "status": status, **({"after": after} if after else {})}
        response = client.get("/api/v1/inspections", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["items"]
        after = body["next"]
        if len(body["items"]) < limit:
            return seen, after


def test_paging_returns_each_decided_item_once_in_decision_order(client_for, db_session):
    station, warehouse = client_for("dock-3"), client_for("wms", scope="warehouse")
    alice = make_user(db_session)
    base = utcnow() - timedelta(seconds=60)
    same = base + timedelta(seconds=3)  # two automatic items decided at the same instant
    ours = [
        automatic(db_session, "dock-3", base + timedelta(seconds=1)),
        automatic(db_session, "dock-3/cam-1", same, verdict="reject"),
        automatic(db_session, "dock-3", same),
        automatic(db_session, "dock-3", base + timedelta(seconds=7)),
    ]
    human = [by_inspector(db_session, alice, "dock-3", base + timedelta(seconds=s)) for s in (2, 5)]
    human.append(by_inspector(db_session, alice, "dock-3/cam-2", base + timedelta(seconds=9)))
    theirs = [automatic(db_session, "dock-4", base + timedelta(seconds=4)),
              automatic(db_session, "dock-30", base + timedelta(seconds=6))]  # fmt: skip
    make_review_item(db_session, station="dock-3")  # waiting for an inspector: not decided
    station.post("/api/v1/inspections", files=[("image", ("a.png", garment_photo(), "image/png"))])

    items, last = poll(station, None, limit=2)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == 7
    positions = [(item["outcome"]["decided_at"], item["id"]) for item in items]
    assert positions == sorted(positions, key=lambda p: (p[0], uuid.UUID(p[1])))
    assert {str(i) for i in ours} <= set(ids)
    assert not {str(i) for i in theirs} & set(ids), "another station's items never appear"
    assert all(item["station"].split("/")[0] == "dock-3" for item in items)
    assert [item["outcome"]["decided_by"] for item in items].count("inspector") == 3

    everything, _ = poll(warehouse, None, limit=500)
    assert {str(i) for i in [*ours, *theirs]} <= {item["id"] for item in everything}
    assert len(everything) == 9

    # Caught up: the same cursor comes back. A re-review shows the item again, further on.
    nothing = station.get("/api/v1/inspections", params={"after": last}).json()
    assert nothing == {"items": [], "next": last}
    lead = make_user(db_session, role="lead")
    send_back(session=db_session, task_id=human[0], actor_id=lead.id)
    db_session.commit()
    later = utcnow()
    by_again = claim_next(session=db_session, user_id=alice.id, lease_seconds=600, now=later)
    assert by_again.id == human[0]
    decide(session=db_session, task_id=human[0], user_id=alice.id, verdict="pass", now=later)
    again, _ = poll(station, last, limit=2)
    assert [(item["outcome"]["verdict"], item["outcome"]["decided_by"]) for item in again] == [
        ("pass", "inspector")
    ]
    assert again[0]["id"] in ids


def test_a_warehouse_token_reads_every_station_and_sends_nothing(client_for, db_session):
    station, warehouse = client_for("dock-3"), client_for("wms", scope="warehouse")
    elsewhere = automatic(db_session, "dock-4", utcnow())
    assert station.get(f"/api/v1/inspections/{elsewhere}").status_code == 404
    assert warehouse.get(f"/api/v1/inspections/{elsewhere}").json()["station"] == "dock-4"

    photo = [("image", ("a.png", garment_photo(), "image/png"))]
    refused = warehouse.post("/api/v1/inspections", files=photo)
    assert refused.status_code == 403
    assert "warehouse token only reads" in refused.json()["detail"]
    assert station.post("/api/v1/inspections", files=photo).status_code == 201


def test_other_statuses_list_in_creation_order(client_for, db_session):
    station = client_for("dock-3")
    photo = [("image", ("a.png", garment_photo(), "image/png"))]
    queued = [station.post("/api/v1/inspections", files=photo, data={"external_id": f"q{i}"})
              .json()["id"] for i in range(3)]  # fmt: skip
    automatic(db_session, "dock-3", utcnow())
    items, _ = poll(station, None, limit=2, status="queued")
    assert sorted(item["id"] for item in items) == sorted(queued)
    assert all(item["status"] == "queued" for item in items)
    everything, _ = poll(station, None, limit=2, status="all")
    assert len(everything) == 4


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"after": "not-a-cursor"}, 400, "not a cursor this API gave out"),
        ({"after": "eyJzIjogMX0"}, 400, "not a cursor"),  # {"s": 1}: ours in shape only
        ({"limit": 0}, 422, "limit"),
        ({"limit": 501}, 422, "limit"),
        ({"limit": "many"}, 422, "limit"),
        ({"status": "pending"}, 422, "status"),
    ],
)
def test_a_bad_cursor_limit_or_status_is_refused(client_for, params, status, says):
    response = client_for("dock-3").get("/api/v1/inspections", params=params)
    assert response.status_code == status
    assert says in str(response.json()["detail"])


def test_a_cursor_pages_only_the_status_it_was_given_for(client_for, db_session):
    station = client_for("dock-3")
    automatic(db_session, "dock-3", utcnow())
    cursor = station.get("/api/v1/inspections", params={"status": "all"}).json()["next"]
    refused = station.get("/api/v1/inspections", params={"after": cursor})
    assert refused.status_code == 400
    assert "status=all, not decided" in refused.json()["detail"]
