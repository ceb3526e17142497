"""/ml/models' review band: a proposal applied, dismissed, rolled back; audited, checked
for CSRF, and read back by routing (app.thresholds.bands)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.tables import AuditEvent
from app.config import get_settings
from app.policy.thresholds import Band
from app.thresholds import bands
from app.thresholds.tables import RoutingBand
from tests.integration import web_support
from tests.integration.web_support import add_user, log_in

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture


@pytest.fixture
def fresh_band():
    bands.forget()
    yield
    bands.forget()


def in_force(session) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The band routing reads (the worker's own read, settings_in_force, is the same query
    on its own connection: tests/integration/test_models_worker.py)."""
    settings = bands.with_applied(get_settings(), session)
    return settings.threshold_high, settings.threshold_low


def test_a_proposal_is_applied_then_rolled_back_on_the_models_page(
    make_app, db_session, fresh_band
):
    guarantee = "With probability 0.9 the escape rate is at most 2.00% (1,204 items)."
    proposal = bands.propose(db_session, band=Band(0.93, 0.75), note=guarantee, user_id=None)
    other = bands.propose(db_session, band=Band(0.90, 0.80), note="", user_id=None)
    db_session.commit()
    add_user(db_session, role="ml")
    client = make_app()
    token = log_in(client, "ml-en")

    page = client.get("/ml/models").text
    assert "In force: 0.95:0.70, from the settings" in page
    assert guarantee in page and f'action="/ml/bands/{proposal.id}/apply"' in page
    assert client.post(f"/ml/bands/{proposal.id}/apply").status_code == 403  # no CSRF token

    done = client.post(f"/ml/bands/{proposal.id}/apply", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/ml/models"
    assert "Band 0.93:0.75 is in force" in client.get("/ml/models").text
    assert in_force(db_session) == (0.93, 0.75)
    again = client.post(f"/ml/bands/{proposal.id}/apply", data={"csrf_token": token})
    assert again.status_code == 303
    assert "no longer open" in client.get("/ml/models").text

    client.post(f"/ml/bands/{other.id}/dismiss", data={"csrf_token": token})
    client.post("/ml/bands/rollback", data={"csrf_token": token})
    page = client.get("/ml/models").text
    assert "Rolled back: 0.95:0.70 is in force again." in page
    assert in_force(db_session) == (0.95, 0.70)
    db_session.expire_all()
    rows = db_session.scalars(select(RoutingBand).order_by(RoutingBand.id)).all()
    assert [(r.state, r.source) for r in rows] == [
        ("applied", "recommend"), ("dismissed", "recommend"), ("applied", "rollback"),
    ]  # fmt: skip
    actions = db_session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert [a for a in actions if a.startswith("band.")] == [
        "band.propose", "band.propose", "band.apply", "band.dismiss", "band.rollback",
    ]  # fmt: skip


def test_nothing_to_roll_back_says_so_in_korean(make_app, db_session, fresh_band):
    add_user(db_session, role="ml", language="ko")
    client = make_app()
    token = log_in(client, "ml-ko")
    client.post("/ml/bands/rollback", data={"csrf_token": token})
    assert "적용된 구간이 없습니다" in client.get("/ml/models").text
    assert in_force(db_session) == (0.95, 0.70)


def test_review_weighs_an_items_regions_by_the_band_it_was_routed_with(db_session):
    """A stain at 0.65 counts in the models' verdict of an item routed under 0.85:0.60,
    and not in one routed under the settings' 0.95:0.70 (or before bands were recorded)."""
    from app.review.decisions import decide
    from app.review.service import claim_next
    from tests.integration.review_support import make_review_item, make_user

    kim = make_user(db_session, name="band-kim")
    wide = make_review_item(db_session, confidence=0.65, severity="moderate")
    wide.inspection.band_high, wide.inspection.band_low = 0.85, 0.60
    old = make_review_item(db_session, confidence=0.65, severity="moderate")
    db_session.flush()
    verdicts = []
    for task in (wide, old):
        claim_next(session=db_session, user_id=kim.id, lease_seconds=300)
        decision = decide(session=db_session, task_id=task.id, user_id=kim.id,
                          verdict="confirm", commit=False)  # fmt: skip
        verdicts.append((decision.model_verdict, decision.verdict))
    assert verdicts == [("reject", "reject"), ("pass", "pass")]
