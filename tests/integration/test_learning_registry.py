"""A version that failed its gate never serves: the registry and the database refuse to alias it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.registry import service

pytestmark = pytest.mark.integration

FAILED = {"passed": False, "reasons": ["FAIL: map50 0.4100 (minimum 0.85)", "pass: precision"]}
PASSED = {"passed": True, "reasons": ["pass: map50 0.9100 (minimum 0.85)"]}


def detector(session, name: str, gate: dict | None):  # type: ignore[no-untyped-def]
    return service.register_model_version(
        session=session, kind="detector", version=name, uri=f"s3://models/detector/{name}",
        content_hash="b" * 64, metrics={"map50": 0.41}, gate=gate,
    )  # fmt: skip


def test_set_alias_refuses_a_version_that_failed_its_gate(db_session):
    failed = detector(db_session, "det-failed", FAILED)
    with pytest.raises(service.GateFailed, match=r"det-failed failed its evaluation gate.*map50"):
        service.set_alias(session=db_session, alias="challenger", model_version=failed)
    assert service.get_alias(session=db_session, alias="challenger", kind="detector") is None
    for ok in (detector(db_session, "det-passed", PASSED), detector(db_session, "det-old", None)):
        service.set_alias(session=db_session, alias="champion", model_version=ok)  # no gate: ok


def test_the_database_refuses_to_alias_a_failed_version_too(db_session):
    failed = detector(db_session, "det-failed", FAILED)
    with pytest.raises(DBAPIError, match="failed its evaluation gate"), db_session.begin_nested():
        db_session.execute(
            text("INSERT INTO model_alias (alias, kind, model_version_id, updated_at) "
                 "VALUES ('champion', 'detector', :id, now())"),
            {"id": failed.id},
        )  # fmt: skip


def test_lineage_and_gate_are_part_of_the_immutable_version(db_session):
    first = detector(db_session, "det-1", FAILED)
    assert detector(db_session, "det-1", FAILED) is first
    with pytest.raises(service.ImmutableVersion):
        detector(db_session, "det-1", PASSED)  # a gate cannot be rewritten into a pass
    with pytest.raises(DBAPIError, match="immutable"), db_session.begin_nested():
        db_session.execute(text("UPDATE model_version SET gate = NULL"))
