"""The ml role's models page: runs, the experiment, versions; promote and roll back; freeze
test items."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.auth.tables import AuditEvent, User
from app.learning.tables import TestSetItem, TrainingRun, TriggerCheck
from app.registry import experiments, service
from app.review import decisions
from tests.integration import web_support
from tests.integration.review_support import make_review_item, make_user, register_version
from tests.integration.web_support import add_user, log_in, session_csrf

pytestmark = pytest.mark.integration

make_app = web_support.make_app  # fixture


@pytest.fixture
def ml(make_app, db_session):
    add_user(db_session, role="ml")
    client = make_app()
    log_in(client, "ml-en")
    return client


def test_the_page_shows_an_experiment_and_promote_moves_the_champion(ml, db_session):
    for kind, name in (("detector", "det-1"), ("classifier", "cls-1")):
        experiments.move_alias(
            session=db_session,
            alias="champion",
            version=register_version(db_session, kind, name),
            actor_id=None,
            why="t",
        )
    candidate = register_version(db_session, "detector", "det-<b>2</b>")
    experiments.stage_challenger(session=db_session, candidate=candidate, share=0.1,
                                 actor_id=None)  # fmt: skip
    page = ml.get("/ml/models").text
    assert "the challenger serves 10 % of items" in page
    assert "det-&lt;b&gt;2&lt;/b&gt;" in page and "det-<b>2</b>" not in page  # escaped
    # A new detector is judged on its boxes; nothing decided yet in either arm.
    assert "boxes shown and boxes drawn" in page and page.count("0 / 0 · 0 items") == 2

    csrf = session_csrf(ml)
    response = ml.post("/ml/models/promote", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 303
    assert service.get_alias(session=db_session, alias="champion", kind="detector") == candidate
    assert "The challenger is the champion now" in ml.get("/ml/models").text

    ml.post("/ml/models/rollback", headers={"X-CSRF-Token": csrf})
    assert service.get_alias(session=db_session, alias="champion", kind="detector").version == (
        "det-1"
    )
    assert "det-1 again" in ml.get("/ml/models").text


def test_promote_without_an_experiment_says_why(ml):
    ml.post("/ml/models/promote", headers={"X-CSRF-Token": session_csrf(ml)})
    assert "no experiment is running" in ml.get("/ml/models").text


def test_posts_need_the_csrf_token(ml):
    assert ml.post("/ml/models/rollback").status_code == 403


def test_retrain_with_no_verified_samples_is_refused_with_the_reason(ml):
    ml.post("/ml/retrain", headers={"X-CSRF-Token": session_csrf(ml)})
    page = ml.get("/ml/models").text
    assert "The run was refused" in page and "samples" in page


def passed_items(db_session, count: int) -> list[uuid.UUID]:
    """Items a person passed: verified labels no run trained on, so a freeze may pick them."""
    inspector = make_user(db_session)
    ids = []
    for _ in range(count):
        task = make_review_item(db_session)
        decisions.decide(session=db_session, task_id=task.id, user_id=inspector.id,
                         verdict="pass")  # fmt: skip
        ids.append(task.inspection_id)
    return ids


def frozen(db_session) -> list[TestSetItem]:
    return list(db_session.scalars(select(TestSetItem)))


def freeze_audits(db_session) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == "test_set.freeze")
    return list(db_session.scalars(query))


def eligible(client) -> str:  # type: ignore[no-untyped-def]
    """The count the page loads after it is shown."""
    page = client.get("/ml/models").text
    assert 'hx-get="/ml/test-set/eligible" hx-trigger="load"' in page
    return client.get("/ml/test-set/eligible", headers={"HX-Request": "true"}).text


def test_freezing_from_the_page_adds_items_says_how_many_and_is_audited(ml, db_session):
    items = passed_items(db_session, 5)
    assert "The test set holds 0 items." in ml.get("/ml/models").text
    assert "5 verified items never trained on" in eligible(ml)
    csrf = session_csrf(ml)

    response = ml.post("/ml/test-set/freeze", data={"count": "3", "csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/ml/models"
    page = ml.get("/ml/models").text
    assert "3 items added to the test set; it now holds 3." in page
    assert "The test set holds 3 items." in page and "2 verified items" in eligible(ml)
    me = db_session.scalar(select(User).where(User.username == "ml-en"))
    rows = frozen(db_session)
    assert len(rows) == 3 and {r.inspection_id for r in rows} <= set(items)
    assert {r.added_by_id for r in rows} == {me.id}
    [audit] = freeze_audits(db_session)
    assert audit.actor_id == me.id and audit.details == {"asked": 3, "added": 3, "total": 3}

    # Fewer eligible than asked: all of them, and the message says so.
    ml.post("/ml/test-set/freeze", data={"count": "50", "csrf_token": csrf})
    page = ml.get("/ml/models").text
    assert "2 of the 50 items asked for added to the test set" in page and "holds 5." in page
    assert {r.inspection_id for r in frozen(db_session)} == set(items)

    # None left: nothing changes, nothing is audited, and the page says why.
    ml.post("/ml/test-set/freeze", data={"count": "1", "csrf_token": csrf})
    assert "No items added to the test set" in ml.get("/ml/models").text
    assert len(frozen(db_session)) == 5 and len(freeze_audits(db_session)) == 2


def test_the_flash_speaks_the_users_language(make_app, db_session):
    add_user(db_session, role="ml", language="ko")
    client = make_app()
    log_in(client, "ml-ko")
    passed_items(db_session, 2)
    client.post("/ml/test-set/freeze", data={"count": "2", "csrf_token": session_csrf(client)})
    assert "테스트 세트에 2건을 추가했습니다. 이제 2건입니다." in client.get("/ml/models").text


@pytest.mark.parametrize("count", ["0", "-1", "abc", "100001", "1.5", ""])
def test_a_bad_count_says_what_is_wanted_and_changes_nothing(ml, db_session, count):
    passed_items(db_session, 2)
    response = ml.post("/ml/test-set/freeze", data={"count": count, "csrf_token": session_csrf(ml)})
    assert response.status_code == 303
    assert "a whole number from 1 to 10000; nothing was frozen" in ml.get("/ml/models").text
    assert frozen(db_session) == [] and freeze_audits(db_session) == []


def test_an_inspector_may_not_freeze(make_app, db_session):
    add_user(db_session, role="inspector")
    client = make_app()
    log_in(client, "inspector-en")
    passed_items(db_session, 2)
    response = client.post("/ml/test-set/freeze",
                           data={"count": "2", "csrf_token": session_csrf(client)})  # fmt: skip
    assert response.status_code == 403
    assert frozen(db_session) == []


def test_freezing_needs_the_csrf_token(ml, db_session):
    passed_items(db_session, 2)
    assert ml.post("/ml/test-set/freeze", data={"count": "2"}).status_code == 403
    assert frozen(db_session) == []


def test_the_page_offers_the_prompt_versions_for_a_classifier_candidate(ml, db_session):
    champion = register_version(db_session, "classifier", "cls-1", prompt_version="v2")
    experiments.move_alias(session=db_session, alias="champion", version=champion,
                           actor_id=None, why="t")  # fmt: skip
    page = ml.get("/ml/models").text
    assert 'action="/ml/classifier/evaluate"' in page
    assert '<option value="v2" selected>v2</option>' in page
    assert '<option value="v1"' not in page  # predates step 2: it cannot classify


def test_a_classifier_candidate_with_unknown_prompts_is_refused_before_any_run(ml, db_session):
    csrf = session_csrf(ml)
    ml.post("/ml/classifier/evaluate", data={"prompt_version": "v404", "uri": "/m/cls"},
            headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert "Prompt version &#39;v404&#39; cannot be used" in ml.get("/ml/models").text
    assert db_session.scalars(select(TrainingRun)).all() == []
    ml.post("/ml/classifier/evaluate", data={"prompt_version": "v2"},
            headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert "there is no champion classifier to start from" in ml.get("/ml/models").text


def test_calibrating_the_champion_from_the_page(ml, db_session):
    csrf = session_csrf(ml)
    page = ml.get("/ml/models").text
    assert 'id="calibrate"' in page and "Calibrate the champion" in page
    ml.post("/ml/classifier/evaluate", data={"calibrate": "true", "prompt_version": "v2"},
            headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert "leave the weights and prompts empty" in ml.get("/ml/models").text
    ml.post("/ml/classifier/evaluate", data={"calibrate": "true"},
            headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert "there is no champion classifier to start from" in ml.get("/ml/models").text
    assert db_session.scalars(select(TrainingRun)).all() == []


def test_a_classifier_candidate_without_verified_crops_is_refused_and_shown(ml, db_session):
    ml.post("/ml/classifier/evaluate", data={"prompt_version": "v2", "uri": "s3://m/<b>x</b>"},
            headers={"X-CSRF-Token": session_csrf(ml)})  # fmt: skip
    page = ml.get("/ml/models").text
    assert "The run was refused: only 0 verified crops" in page
    [run] = db_session.scalars(select(TrainingRun)).all()
    assert run.kind == "classifier" and run.candidate["uri"] == "s3://m/<b>x</b>"
    assert "s3://m/&lt;b&gt;x&lt;/b&gt; · v2" in page and "<b>x</b>" not in page


def test_a_refused_candidate_and_a_busy_slot_are_explained_in_the_users_language(
    make_app, db_session
):
    add_user(db_session, role="ml", language="ko")
    client = make_app()
    log_in(client, "ml-ko")
    csrf = session_csrf(client)
    client.post("/ml/classifier/evaluate", data={"prompt_version": "v2"},
                headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert "기준이 될 챔피언 분류기가 없습니다" in client.get("/ml/models").text
    # A run refused for want of crops: the notice and the runs table say why in Korean.
    client.post("/ml/classifier/evaluate", data={"prompt_version": "v2", "uri": "/m/cls"},
                headers={"X-CSRF-Token": csrf})  # fmt: skip
    page = client.get("/ml/models").text
    assert page.count("평가할 검증된 크롭이 0개뿐입니다") == 2 and "verified crops" not in page
    # A run stored before reasons had codes reads as it was written.
    db_session.add(TrainingRun(status="refused", trigger="page", phase="refused", metrics={},
                               refusal_reasons=["an old reason"]))  # fmt: skip
    db_session.commit()
    assert "an old reason" in client.get("/ml/models").text
    db_session.add(TrainingRun(status="queued", trigger="page", refusal_reasons=[],
                               metrics={}, phase="queued"))  # fmt: skip
    db_session.commit()
    client.post("/ml/classifier/evaluate", data={"prompt_version": "v2", "uri": "/m/cls"},
                headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert "한 번에 하나만 실행할 수 있습니다" in client.get("/ml/models").text


def test_trigger_checks_read_in_the_users_language(make_app, db_session):
    from app.policy.problems import codes
    from app.policy.retrain import TriggerInput, TriggerRules, should_retrain

    reasons = should_retrain(TriggerInput(1200, 40, 12), TriggerRules()).reasons
    db_session.add(TriggerCheck(
        new_verified_samples=1200, reviewed=40, disagreements=12, window_days=7.0,
        fired=True, reasons=reasons, reason_codes=codes(reasons), note="started run 7",
        note_code={"key": "trigger_note.started", "params": {"run": 7}},
    ))  # fmt: skip
    db_session.add(TriggerCheck(new_verified_samples=0, reviewed=0, disagreements=0,
                                window_days=7.0, fired=True, reasons=["an old reason"],
                                note="an old note"))  # fmt: skip
    db_session.commit()
    add_user(db_session, role="ml", language="ko")
    client = make_app()
    log_in(client, "ml-ko")
    page = client.get("/ml/models").text
    assert "새로 검증된 샘플 1200개 (기준 1000)" in page and "검수 40건 중 불일치 30.0%" in page
    assert "실행 7을(를) 시작했습니다" in page and "new verified samples" not in page
    # Checks stored before codes were kept read as written.
    assert "an old reason" in page and "an old note" in page


def test_the_polling_runs_block_reads_the_runs_only(ml, db_session):
    """While a run is active the page asks for its runs block every 2 s; that must not
    recount the test set or re-measure the experiment, which grow with the site."""
    from sqlalchemy import event

    from tests.integration.web_support import HTMX

    passed_items(db_session, 3)
    db_session.add(TrainingRun(status="queued", trigger="page", refusal_reasons=[],
                               metrics={}, phase="queued"))  # fmt: skip
    db_session.commit()
    statements: list[str] = []
    engine = db_session.get_bind().engine

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        block = ml.get("/ml/models", headers=HTMX).text
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert 'id="runs"' in block and 'hx-trigger="every 2s"' in block
    assert "test-set" not in block and "classifier-candidate" not in block
    queries = [s for s in statements if "SAVEPOINT" not in s]
    assert not any("test_set_item" in s or "trained_item" in s for s in queries), queries
    assert len(queries) <= 3, queries  # the user, the recent runs, the active run


def test_tuning_from_the_page_is_offered_and_refused_with_reasons_in_the_users_language(
    make_app, db_session
):
    add_user(db_session, role="ml", language="ko")
    ko = make_app()
    log_in(ko, "ml-ko")
    page = ko.get("/ml/models").text
    assert 'action="/ml/classifier/tune"' in page
    assert page.count('name="kinds"') == 4 and 'value="D" checked' in page
    csrf = session_csrf(ko)
    # Without a champion classifier there is nothing to tune.
    ko.post("/ml/classifier/tune", data={"kinds": ["A"]}, headers={"X-CSRF-Token": csrf})
    assert "튜닝할 챔피언 분류기가 없습니다" in ko.get("/ml/models").text
    assert db_session.scalars(select(TrainingRun)).all() == []
    champion = register_version(db_session, "classifier", "cls-1", prompt_version="v2")
    experiments.move_alias(session=db_session, alias="champion", version=champion,
                           actor_id=None, why="t")  # fmt: skip
    db_session.commit()  # a refusal below rolls the request's session back
    ko.post("/ml/classifier/tune", data={"kinds": ["A", "Z"]}, headers={"X-CSRF-Token": csrf})
    assert "지시 데이터 유형은 A, B, C, D입니다" in ko.get("/ml/models").text
    # Nothing verified yet: the run is recorded, refused, and says why in Korean.
    ko.post("/ml/classifier/tune", data={"kinds": ["A", "B"]}, headers={"X-CSRF-Token": csrf})
    [run] = db_session.scalars(select(TrainingRun)).all()
    assert run.status == "refused" and run.candidate["tune"]["kinds"] == ["A", "B"]
    assert "튜닝할 지시 예제가 없습니다" in ko.get("/ml/models").text
