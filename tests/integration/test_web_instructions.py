"""/ml/instructions: the ML team reads an instruction snapshot's samples with their crops,
filters them, and excludes a bad one, which makes a new snapshot that later builds keep to.

The reviews are test_instructions.py's seed (every kind of verified answer, a false alarm
with a tag and a note); the photos are in the app's own store.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.auth.tables import AuditEvent, User
from app.instructions.export import cut
from app.instructions.snapshots import find_snapshot, load_manifest
from app.instructions.tables import InstructionExclusion, InstructionSnapshot
from app.learning.photos import fetch_photo
from app.review.tables import Decision, DecisionRegion
from app.storage import LocalStore
from tests.integration import web_support
from tests.integration.test_instructions import Seeded, build, seed
from tests.integration.web_support import HTMX, add_user, log_in, session_csrf

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture
NOTE = "<script>alert('lamp')</script> only the lamp's shadow"
ROW = re.compile(r'<tr data-example="([^"]+)"')


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "photos")  # where make_app's LOUPE_STORAGE_DIR points


@pytest.fixture
def ml(make_app, db_session):
    add_user(db_session, role="ml")
    client = make_app()
    log_in(client, "ml-en")
    return client


@pytest.fixture
def seeded(db_session, store) -> tuple[Seeded, InstructionSnapshot]:
    found = seed(db_session, store)
    decision = db_session.get_one(DecisionRegion, found.false_alarm).decision_id
    db_session.get_one(Decision, decision).note = NOTE
    result = build(db_session, store)
    db_session.commit()
    return found, result.snapshot


def rows(html: str) -> list[str]:
    return ROW.findall(html)


def exclude(client, snapshot: str, example: str, reason: str = "mislabelled", **more: str):
    form = {"csrf_token": session_csrf(client), "snapshot": snapshot, "example": example,
            "reason": reason, **more}  # fmt: skip
    return client.post("/ml/instructions/exclude", data=form)


def test_the_ml_user_sees_the_samples_with_their_crops(ml, seeded, store):
    found, snapshot = seeded
    page = ml.get("/ml/instructions")
    assert page.status_code == 200
    html = page.text
    assert snapshot.id[:12] in html and "A · fact verification" in html
    assert "Class balance" in html and 'href="/ml/instructions"' in html  # linked in the nav
    shown = rows(html)
    assert len(shown) == 50 < snapshot.examples  # a page of 50, the rest on later pages
    assert "page 1 of" in html and "page=2" in html
    crop_id = int(shown[0].split(":")[0])
    src = f"/ml/instructions/{snapshot.id}/crops/{crop_id}"
    assert f'src="{src}"' in html

    crop = ml.get(src)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"
    assert "immutable" in crop.headers["cache-control"]
    manifest = load_manifest(store=store, snapshot=snapshot)
    entry = next(c for c in manifest["crops"] if c["id"] == crop_id)
    expected = cut(fetch_photo(store, entry["key"], entry["sha256"]), entry["box"], 0.15)
    with Image.open(io.BytesIO(crop.content)) as served:
        assert served.convert("RGB").tobytes() == expected.tobytes()  # what the export writes

    assert ml.get(f"/ml/instructions/{snapshot.id}/crops/{max(found.frozen)}").status_code == 404
    assert ml.get("/ml/instructions?snapshot=abcdef0123").status_code == 404
    assert ml.get(f"/ml/instructions/{'0' * 64}/crops/{crop_id}").status_code == 404


def test_the_page_says_how_to_build_when_there_is_no_snapshot(ml):
    page = ml.get("/ml/instructions")
    assert page.status_code == 200 and "loupe instructions build" in page.text


def test_filters_by_kind_type_and_language_with_and_without_htmx(ml, seeded):
    _, snapshot = seeded
    only_d = rows(ml.get("/ml/instructions?kind=D").text)
    assert only_d and all(":D." in r for r in only_d)
    query = f"/ml/instructions?snapshot={snapshot.id[:10]}&kind=A&type=hole&language=ko"
    fragment = ml.get(query, headers=HTMX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<section class="card-wide" id="examples">')
    holes = rows(fragment.text)
    assert holes and all(":A." in r and r.endswith(":ko") for r in holes)
    assert "Hole" in fragment.text
    full = ml.get(query)
    assert "<html" in full.text and rows(full.text) == holes
    assert '<option value="A" selected>' in full.text  # the form shows the filters in force
    assert "page 1 of 1" in ml.get(query + "&page=99").text  # past the end: the last page
    nothing = ml.get("/ml/instructions?kind=B&type=tear")  # a type it has no B example of
    assert nothing.status_code == 200 and "No example matches" in nothing.text


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("kind=E", "The kind filter must be one of A, B, C, D, not “E”."),
        ("type=spaghetti", "The type filter must be one of"),
        ("language=fr", "The language filter must be one of en, ko, not “fr”."),
    ],
)
def test_a_bad_filter_is_a_400_that_says_which(ml, seeded, query, says):
    answer = ml.get(f"/ml/instructions?{query}")
    assert answer.status_code == 400 and says in answer.text


def test_an_inspector_is_refused(make_app, db_session, seeded):
    _, snapshot = seeded
    add_user(db_session, role="inspector")
    client = make_app()
    log_in(client, "inspector-en")
    assert client.get("/ml/instructions").status_code == 403
    assert client.get(f"/ml/instructions/{snapshot.id}/crops/1").status_code == 403
    example = "1:A.type::en"
    assert exclude(client, snapshot.id, example).status_code == 403


def test_excluding_a_sample_makes_a_new_snapshot_and_an_audit_row(ml, seeded, db_session, store):
    found, first = seeded
    html = ml.get("/ml/instructions?kind=D&type=pilling").text
    example = rows(html)[0]
    answer = exclude(ml, first.id, example, "  the crop shows the label, not pilling ", kind="D",
                     type="pilling")  # fmt: skip
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/ml/instructions?snapshot=") and "kind=D&type=pilling" in location
    second = find_snapshot(session=db_session)  # the newest
    assert second.id != first.id and second.id in location
    assert second.examples == first.examples - 1
    manifest = load_manifest(store=store, snapshot=second)
    assert example not in {e["id"] for e in manifest["examples"]}
    assert manifest["excluded"] == [example]
    [record] = db_session.scalars(select(InstructionExclusion)).all()
    ml_user = db_session.scalars(select(User).where(User.username == "ml-en")).one()
    assert (record.source_id, record.result_id) == (first.id, second.id)
    assert record.example_ids == [example]
    assert record.reason == "the crop shows the label, not pilling"
    assert record.actor_id == ml_user.id
    [audit] = db_session.scalars(select(AuditEvent).where(AuditEvent.action.like("instr%")))
    assert audit.details["result"] == second.id and audit.actor_id == ml_user.id

    page = ml.get(location).text
    assert "1 example(s) excluded" in page and example not in rows(page)
    assert f"{first.id[:12]} less 1 excluded example(s)" in page
    assert "ml-en excluded 1 example(s)" in page and "the crop shows the label" in page

    # The same example out of the same snapshot: the same snapshot, the act recorded again.
    again = exclude(ml, first.id, example, "twice")
    assert second.id in again.headers["location"]
    assert "taken out of this snapshot before" in ml.get(again.headers["location"]).text
    count = select(func.count()).select_from(InstructionSnapshot)
    assert db_session.scalar(count) == 2


def test_excluding_a_whole_crop_takes_every_example_of_it_out(ml, seeded, db_session, store):
    found, first = seeded
    example = f"{found.changed}:A.type::en"
    assert exclude(ml, first.id, example, whole_crop="true").status_code == 303
    manifest = load_manifest(store=store, snapshot=find_snapshot(session=db_session))
    assert found.changed not in {c["id"] for c in manifest["crops"]}
    assert all(e["crop"] != found.changed for e in manifest["examples"])
    [record] = db_session.scalars(select(InstructionExclusion)).all()
    assert len(record.example_ids) > 10 and example in record.example_ids


def test_a_later_build_keeps_the_exclusion(ml, seeded, db_session, store):
    found, first = seeded
    example = f"{found.false_alarm}:D.type:stain:ko"  # what the model said: stain
    location = exclude(ml, first.id, example).headers["location"]
    rebuilt = build(db_session, store)
    assert example not in {e["id"] for e in rebuilt.manifest["examples"]}
    # The same reviews, the same exclusion: the build is the excluded snapshot itself.
    assert not rebuilt.created and rebuilt.snapshot.id in location


@pytest.mark.parametrize(
    ("reason", "says"), [("", "a reason is required"), ("x" * 501, "at most 500 characters")]
)
def test_an_exclusion_without_a_reason_shows_the_form_again_saying_why(
    ml, seeded, db_session, reason, says
):
    _, snapshot = seeded
    example = rows(ml.get("/ml/instructions").text)[3]
    answer = exclude(ml, snapshot.id, example, reason)
    assert answer.status_code == 400
    assert says in answer.text and f'data-example="{example}"' in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert db_session.scalar(select(func.count()).select_from(InstructionExclusion)) == 0
    assert find_snapshot(session=db_session).id == snapshot.id


def test_exclusions_need_the_csrf_token_a_known_snapshot_and_example(ml, seeded):
    _, snapshot = seeded
    form = {"snapshot": snapshot.id, "example": "1:A.type::en", "reason": "bad"}
    assert ml.post("/ml/instructions/exclude", data=form).status_code == 403
    assert exclude(ml, "f" * 64, "1:A.type::en").status_code == 404
    assert exclude(ml, snapshot.id, "no-such-example").status_code == 404


def test_notes_and_model_text_are_escaped(ml, seeded):
    _, snapshot = seeded
    html = ml.get("/ml/instructions?type=normal&kind=D").text
    assert "&lt;script&gt;alert(" in html
    assert "<script>alert" not in html
