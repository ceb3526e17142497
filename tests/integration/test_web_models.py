"""The ml role's models page: runs, the experiment, versions; promote and roll back."""

from __future__ import annotations

import pytest

from app.registry import experiments, service
from tests.integration import web_support
from tests.integration.review_support import register_version
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
