"""Model versions, aliases and experiments on a real PostgreSQL; the migration matches."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.registry import service
from app.registry.tables import Experiment

pytestmark = pytest.mark.integration


def version(session, kind: str = "classifier", name: str = "cls-1", **extra):  # type: ignore[no-untyped-def]
    values = {"uri": f"s3://models/{name}", "content_hash": "a" * 64, "metrics": {"f1": 0.9}}
    return service.register_model_version(
        session=session, kind=kind, version=name, **{**values, **extra}
    )


def test_a_version_is_registered_once_and_never_changes(db_session):
    first = version(db_session)
    assert version(db_session) is first  # the same registration again is a no-op
    with pytest.raises(service.ImmutableVersion):
        version(db_session, metrics={"f1": 0.95})
    with pytest.raises(DBAPIError, match="immutable"):
        db_session.execute(text("UPDATE model_version SET uri = 's3://elsewhere'"))


def test_aliases_move_between_versions(db_session):
    old, new = version(db_session, name="cls-1"), version(db_session, name="cls-2")
    service.set_alias(session=db_session, alias="champion", model_version=old)
    assert service.get_alias(session=db_session, alias="champion", kind="classifier") is old
    service.set_alias(session=db_session, alias="champion", model_version=new)
    db_session.expire_all()
    assert service.get_alias(session=db_session, alias="champion", kind="classifier").id == new.id
    assert service.get_alias(session=db_session, alias="challenger", kind="classifier") is None


def test_one_experiment_runs_at_a_time(db_session):
    champion = service.Arm(classifier=version(db_session, name="cls-1"))  # cold start arm
    challenger = service.Arm(
        classifier=version(db_session, name="cls-2"),
        detector=version(db_session, kind="detector", name="det-1"),
    )
    first = service.start_experiment(
        session=db_session, name="first-detector", champion=champion, challenger=challenger,
        challenger_share=0.1,
    )  # fmt: skip
    assert first.status == "running" and first.champion_detector_id is None
    with pytest.raises(service.ExperimentRunning):
        service.start_experiment(
            session=db_session, name="again", champion=champion, challenger=challenger,
            challenger_share=0.1,
        )  # fmt: skip
    with pytest.raises(IntegrityError), db_session.begin_nested():
        # The database holds the rule too, for writers that skip the service.
        db_session.add(
            Experiment(name="raw", status="running", challenger_share=0.5,
                       champion_classifier_id=champion.classifier.id,
                       challenger_classifier_id=challenger.classifier.id)
        )  # fmt: skip
        db_session.flush()
    service.stop_experiment(session=db_session, experiment=first)
    assert first.ended_at is not None
    second = service.start_experiment(
        session=db_session, name="second", champion=champion, challenger=challenger,
        challenger_share=0.2,
    )  # fmt: skip
    assert service.running_experiment(session=db_session) is second
