"""The review page over HTTP: region edits, undo, heartbeat, keys, audits, escaping."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.db import utcnow
from app.inspections.tables import Region
from app.review.tables import Decision, DecisionRegion, DecisionUndo, ReviewTask
from tests.integration import web_support
from tests.integration.review_support import make_user
from tests.integration.web_support import HTMX, add_user, log_in, stored_item

pytestmark = pytest.mark.integration

make_app, client = web_support.make_app, web_support.client  # fixtures


def post(client, url: str, token: str, data: dict | None = None):
    return client.post(url, data=data or {}, headers={**HTMX, "X-CSRF-Token": token})


def test_region_edits_tags_and_note_are_stored_and_the_next_item_comes_back(client, db_session):
    first = stored_item(db_session, name="a", confidence=0.71, regions_per_photo=2)
    second = stored_item(db_session, name="b", confidence=0.72)
    add_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    one, two = db_session.scalars(
        select(Region).where(Region.inspection_id == first.inspection_id).order_by(Region.id)
    ).all()
    edits = [
        {"region": one.id, "type": "hole", "severity": "severe"},
        {"region": two.id, "not_defect": True},
        {"photo": one.photo_id, "box": [200, 100, 260, 180], "type": "tear", "severity": "minor"},
    ]
    form = {"verdict": "reject", "regions": json.dumps(edits), "tags": ["shadow", "print"],
            "note": "print looks like a tear"}  # fmt: skip

    response = post(client, f"/review/{first.id}/decision", token, form)

    assert f"/review/{second.id}/decision" in response.text
    decision = db_session.scalar(select(Decision))
    assert (decision.verdict, decision.tags, decision.note) == (
        "reject", ["shadow", "print"], "print looks like a tear",
    )  # fmt: skip
    outcomes = db_session.scalars(select(DecisionRegion.outcome).order_by(DecisionRegion.id))
    assert list(outcomes) == ["changed", "not_defect", "added"]
    # The undo offer for the decision just made, with the time left.
    assert f'action="/review/decisions/{decision.id}/undo"' in response.text
    assert 'data-seconds="10"' in response.text


def test_edits_that_do_not_fit_are_refused_and_the_item_stays(client, db_session):
    task = stored_item(db_session)
    add_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    form = {"verdict": "pass", "regions": '[{"region": -5, "type": "hole"}]'}
    response = post(client, f"/review/{task.id}/decision", token, form)
    # Only the reason comes back, into the item still on screen with the inspector's edits.
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#decision-notice"
    assert "Not saved" in response.text and "<section" not in response.text
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0
    assert f"/review/{task.id}/decision" in client.get("/review").text


def test_confirm_after_a_correction_stores_it_and_the_page_can_say_so(client, db_session):
    task = stored_item(db_session, severity="severe")
    add_user(db_session)
    token = log_in(client, "inspector-en")
    page = client.get("/review").text
    # What the page needs to show the confirm key's verdict once something was edited.
    verdicts = json.loads(html.unescape(re.search(r"data-verdicts='([^']*)'", page).group(1)))
    assert (verdicts["pilling/minor"], verdicts["hole/severe"]) == ("pass", "reject")
    assert "data-counted" in page and 'data-model="reject"' in page
    assert "Save my corrections: Pass" in html.unescape(page)
    region = db_session.scalar(select(Region).where(Region.inspection_id == task.inspection_id))
    edits = [{"region": region.id, "type": "pilling", "severity": "minor"}]
    form = {"verdict": "confirm", "regions": json.dumps(edits), "expects": "pass"}

    post(client, f"/review/{task.id}/decision", token, form)

    decision = db_session.scalar(select(Decision))
    assert (decision.verdict, decision.model_verdict) == ("pass", "reject")
    assert db_session.scalar(select(DecisionRegion.outcome)) == "changed"


def test_a_reject_without_a_marked_defect_asks_which_region_in_the_users_language(
    client, db_session
):
    task = stored_item(db_session)
    add_user(db_session, language="ko")
    token = log_in(client, "inspector-ko")
    client.get("/review")
    region = db_session.scalar(select(Region).where(Region.inspection_id == task.inspection_id))
    form = {"verdict": "reject", "regions": json.dumps([{"region": region.id, "not_defect": True}])}

    asked = post(client, f"/review/{task.id}/decision", token, form)

    assert "어느 영역이 결함인가요?" in asked.text
    assert db_session.scalar(select(func.count()).select_from(Decision)) == 0
    post(client, f"/review/{task.id}/decision", token, {**form, "unmarked": "true"})
    assert db_session.scalar(select(Decision.verdict)) == "reject"


def test_undo_brings_the_item_back_to_the_same_screen(client, db_session):
    first = stored_item(db_session, name="a", confidence=0.71)
    second = stored_item(db_session, name="b", confidence=0.72)
    add_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    post(client, f"/review/{first.id}/decision", token, {"verdict": "pass"})
    decision = db_session.scalar(select(Decision))

    undone = post(client, f"/review/decisions/{decision.id}/undo", token)

    assert f"/review/{first.id}/decision" in undone.text
    assert db_session.scalar(select(DecisionUndo.decision_id)) == decision.id
    # A reload shows the same item; the next one is still held for afterwards.
    assert f"/review/{first.id}/decision" in client.get("/review").text
    again = post(client, f"/review/decisions/{decision.id}/undo", token)
    assert "already changed" in again.text
    nxt = post(client, f"/review/{first.id}/decision", token, {"verdict": "reject"})
    assert f"/review/{second.id}/decision" in nxt.text


def test_the_heartbeat_keeps_the_lease_and_says_when_it_is_gone(client, db_session):
    task = stored_item(db_session)
    add_user(db_session)
    other = make_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    beat = client.post("/review/heartbeat", data={"task": task.id}, headers={"X-CSRF-Token": token})
    assert beat.status_code == 204

    task.lease_owner_id = other.id  # a lead released it and someone else took it
    db_session.commit()
    lost = client.post("/review/heartbeat", data={"task": task.id}, headers={"X-CSRF-Token": token})
    assert lost.status_code == 409
    assert "Another inspector has this item now" in lost.text and "<html" not in lost.text


def _page_of(client, db_session, task) -> str:
    """The item as its inspector sees it, with what differs per item taken out."""
    html = client.get("/review").text
    html = re.sub(r"data-task-id=\"\d+\"|/review/\d+/decision|/photos/\d+", "", html)
    html = re.sub(r'data-(region|photo-id)="\d+"', "", html)
    return re.sub(r'data-photos="[^"]*"', "", html)


def test_an_audit_looks_exactly_like_an_ordinary_item(make_app, db_session):
    client = make_app(review_show_region_confidence=False)
    add_user(db_session)
    log_in(client, "inspector-en")
    # Ten minutes ago, so that both pages say the same "waiting" and "due in".
    kwargs = {"external_id": "RMA-1", "created_at": utcnow() - timedelta(minutes=10, seconds=20)}
    audit = stored_item(db_session, name="x", confidence=0.99, reason="audit", is_audit=True,
                        **kwargs)  # fmt: skip
    audit_page = _page_of(client, db_session, audit)
    db_session.delete(db_session.get(ReviewTask, audit.id))
    db_session.commit()
    ordinary = stored_item(db_session, name="y", confidence=0.85, station="dock-2", **kwargs)
    ordinary_page = _page_of(client, db_session, ordinary)
    assert audit_page == ordinary_page
    assert "audit" not in re.sub(r"(?i)audit agreement|audit samples", "", audit_page).lower()


def test_user_text_and_model_evidence_are_escaped_on_the_review_page(client, db_session):
    evil = "<script>alert(1)</script>"
    stored_item(
        db_session,
        external_id=evil,
        region_reason=evil,
        evidence={
            "type_distribution": {"stain": 0.5, evil: 0.4},
            "exceptions": [{"key": evil, "probability": 0.9, "threshold": 0.8}, evil],
            "candidate_type": evil,
            "error": evil,
        },
    )
    add_user(db_session)
    log_in(client, "inspector-en")
    page = client.get("/review").text
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6


def test_a_users_own_keys_show_on_the_buttons_and_reach_the_script(client, db_session):
    stored_item(db_session)
    user = add_user(db_session)
    token = log_in(client, "inspector-en")
    page = client.get("/review/keys").text
    form = dict(re.findall(r'name="(key\.[^"]+)" value="([^"]*)"', page))
    assert form["key.pass"] == "KeyP" and form["key.type.stain"] == "Digit1"

    clash = client.post("/review/keys", data={**form, "key.pass": "KeyR", "csrf_token": token})
    assert clash.status_code == 400 and "KeyR is used twice" in clash.text

    form |= {"key.pass": "KeyQ", "key.severity.minor": "KeyZ", "layout": "azerty",
             "csrf_token": token}  # fmt: skip
    assert client.post("/review/keys", data=form).status_code == 303
    db_session.refresh(user)
    assert user.key_bindings == {"pass": "KeyQ", "severity.minor": "KeyZ"}

    review = client.get("/review").text
    # On an AZERTY keyboard the key at Q's place is labelled A, and Z's place W.
    assert re.search(r'data-action="pass">Pass <kbd>A</kbd>', review)
    assert re.search(r'data-action="severity.minor"[^>]*><kbd>W</kbd>', review)
    keymap = json.loads(re.search(r'data-keymap="([^"]+)"', review).group(1).replace("&#34;", '"'))
    assert keymap["KeyQ"] == "pass" and "KeyP" not in keymap

    client.post("/review/keys/reset", data={"csrf_token": token})
    db_session.refresh(user)
    assert user.key_bindings == {}


def test_the_page_speaks_korean_throughout(client, db_session):
    stored_item(db_session)
    add_user(db_session, language="ko")
    log_in(client, "inspector-ko")
    page = client.get("/review").text
    for text in ("통과", "불합격", "결함 아님", "모델이 틀린 이유", "오늘", "감사 일치율", "얼룩"):
        assert text in page, text
    for english in ("Pass", "Reject", "Not a defect", "Today", "Why the model was wrong"):
        assert f">{english}<" not in page and f">{english} <" not in page, english


def test_my_numbers_count_todays_decisions(client, db_session):
    tasks = [stored_item(db_session, name=f"n{i}", confidence=0.71 + i / 100) for i in range(3)]
    add_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    for task in tasks[:2]:
        response = post(client, f"/review/{task.id}/decision", token, {"verdict": "pass"})
    today = re.search(r"<dt>Today</dt><dd>(\d+)</dd>", response.text)
    assert today and today.group(1) == "2"


def test_logging_out_gives_the_held_items_back(client, db_session):
    first = stored_item(db_session, name="a", confidence=0.71)
    second = stored_item(db_session, name="b", confidence=0.72)
    add_user(db_session)
    token = log_in(client, "inspector-en")
    client.get("/review")
    held = db_session.scalars(select(ReviewTask.lease_owner_id).order_by(ReviewTask.id)).all()
    assert held[0] is not None and held[0] == held[1]  # the item on screen and the next one

    client.post("/logout", data={"csrf_token": token})

    db_session.expire_all()
    assert [db_session.get(ReviewTask, t.id).lease_owner_id for t in (first, second)] == [
        None,
        None,
    ]
