"""Staging a challenger, the A/B analysis, promotion and rollback, and Serve following it."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from app.auth.tables import AuditEvent
from app.db import utcnow
from app.policy import ab
from app.policy.ab import AbRules
from app.registry import experiments, service
from app.registry.serving import serving_plan
from app.registry.tables import Experiment
from tests.fixtures.serve import SITE_PROMPTS, ServeApp, main_app_settings
from tests.integration.review_support import (
    decide_in_arm,
    make_user,
    register_version,
)

pytestmark = pytest.mark.integration

FAILED = {"passed": False, "reasons": ["FAIL: map50 0.1000 (minimum 0.85)"]}


@pytest.fixture
def registry(db_session):
    """A champion detector and classifier, and a candidate detector that passed its gate."""
    champion_det = register_version(db_session, "detector", "det-1")
    champion_cls = register_version(db_session, "classifier", "cls-1")
    for v in (champion_det, champion_cls):
        experiments.move_alias(session=db_session, alias="champion", version=v, actor_id=None,
                               why="first models")  # fmt: skip
    candidate = register_version(db_session, "detector", "det-2")
    return champion_det, champion_cls, candidate


def test_a_candidate_is_staged_as_challenger_and_serving_follows(db_session, registry):
    champion_det, champion_cls, candidate = registry
    assert serving_plan(db_session) == {
        "detector_dir": "/models/det-1", "classifier_dir": "/models/cls-1",
        "classifier_prompt_version": None, "challenger_prompt_version": None,
        "classifier_temperature": None, "challenger_temperature": None,
        "challenger_detector_dir": None, "challenger_classifier_dir": None,
        "classifier_adapter": None, "challenger_classifier_adapter": None,
        "challenger_share": 0.0, "experiment": "",
    }  # fmt: skip
    experiment = experiments.stage_challenger(
        session=db_session, candidate=candidate, share=0.1, actor_id=None
    )
    plan = serving_plan(db_session)
    # The challenger arm changes only the detector; the classifier is the champion's.
    assert plan["challenger_detector_dir"] == "/models/det-2"
    assert plan["challenger_classifier_dir"] == "/models/cls-1"
    assert (plan["challenger_share"], plan["experiment"]) == (0.1, experiment.name)
    assert service.get_alias(session=db_session, alias="challenger", kind="detector") == candidate


def test_a_version_that_failed_its_gate_is_never_staged(db_session, registry):
    bad = register_version(db_session, "detector", "det-bad", gate=FAILED)
    with pytest.raises(service.GateFailed, match="failed its evaluation gate"):
        experiments.stage_challenger(session=db_session, candidate=bad, share=0.1, actor_id=None)


def test_the_analysis_promotes_a_better_challenger_and_rollback_puts_the_champion_back(
    db_session, registry
):
    champion_det, _, candidate = registry
    start = utcnow() - timedelta(days=2)
    experiment = experiments.stage_challenger(
        session=db_session, candidate=candidate, share=0.5, actor_id=None, now=start
    )
    kim = make_user(db_session)
    for i in range(30):  # the champion agrees 15/30, the challenger 29/30
        decide_in_arm(db_session, kim, "champion", i % 2 == 0, start + timedelta(minutes=i + 1))
        decide_in_arm(db_session, kim, "challenger", i != 0, start + timedelta(minutes=i + 1))
    rules = AbRules(min_samples_per_arm=30, duration_days=7)

    waiting = experiments.analyse(session=db_session, rules=rules, auto_promote=False)
    assert waiting.decision == "awaiting_confirmation"
    assert experiment.status == "running"
    # A detector challenger is judged on its boxes: one stain box per item, kept or not.
    assert experiment.analysis["challenger"] == {"agreed": 29, "total": 30, "items": 30}

    outcome = experiments.analyse(session=db_session, rules=rules, auto_promote=True)
    assert outcome.decision == "promote"
    assert (experiment.status, experiment.result) == ("stopped", "promoted")
    assert service.get_alias(session=db_session, alias="champion", kind="detector") == candidate
    assert service.get_alias(session=db_session, alias="challenger", kind="detector") is None
    assert serving_plan(db_session)["detector_dir"] == "/models/det-2"

    message = experiments.rollback(session=db_session, actor_id=kim.id, why="scratches missed")
    assert "det-1" in message
    assert service.get_alias(session=db_session, alias="champion", kind="detector") == champion_det
    moves = db_session.scalars(
        select(AuditEvent).where(AuditEvent.subject == "champion:detector").order_by(AuditEvent.id)
    ).all()
    assert [m.details["to_version_id"] for m in moves] == [
        champion_det.id, candidate.id, champion_det.id,
    ]  # fmt: skip
    assert moves[-1].actor_id == kim.id


def test_a_detector_challenger_is_judged_on_its_boxes_with_audits_weighed_up(db_session, registry):
    """A detector that shows people only the garments it is sure of looks perfect on what
    they review; the audits of what it passed stand for the items nobody saw."""
    _, _, candidate = registry
    start = utcnow() - timedelta(days=2)
    experiment = experiments.stage_challenger(
        session=db_session, candidate=candidate, share=0.5, actor_id=None, now=start
    )
    kim = make_user(db_session)
    for i in range(30):
        when = start + timedelta(minutes=i + 1)
        decide_in_arm(db_session, kim, "champion", i % 2 == 0, when)  # 15 of 30 boxes kept
        decide_in_arm(db_session, kim, "challenger", True, when)  # every box it showed kept
    # Two audits of its automatic passes: each found a box of nothing (as a pass that
    # ignored a false alarm would). At 2 % audits each stands for 50 items.
    for i in range(2):
        decide_in_arm(db_session, kim, "challenger", False, start + timedelta(hours=1, minutes=i),
                      is_audit=True)  # fmt: skip
    rules = AbRules(min_samples_per_arm=30, duration_days=7, audit_rate=0.02)

    regions = experiments.arm_agreement(db_session, experiment, audit_rate=0.02)
    assert (regions["champion"].agreed, regions["champion"].total) == (15, 30)
    assert (regions["challenger"].agreed, regions["challenger"].total) == (30, 130)
    assert regions["challenger"].items == 32
    outcome = experiments.analyse(session=db_session, rules=rules, auto_promote=True)
    assert outcome.decision == "rollback", outcome.reason
    assert "region agreement" in outcome.reason

    # Unweighted (as if audits were a census), the same boxes would have promoted it.
    unweighted = experiments.arm_agreement(db_session, experiment, audit_rate=1.0)
    assert (unweighted["challenger"].agreed, unweighted["challenger"].total) == (30, 32)
    as_census = ab.analyse(unweighted["champion"], unweighted["challenger"], 2.0, rules)
    assert as_census.decision == "promote", as_census.reason


def test_a_classifier_challenger_is_judged_on_the_verdicts_it_proposed(db_session, registry):
    champion_det, _, _ = registry
    prompt = register_version(db_session, "classifier", "cls-2")
    start = utcnow() - timedelta(days=2)
    experiment = experiments.stage_challenger(
        session=db_session, candidate=prompt, share=0.5, actor_id=None, now=start
    )
    assert not experiments.changes_detector(experiment)
    kim = make_user(db_session)
    for i in range(30):
        when = start + timedelta(minutes=i + 1)
        decide_in_arm(db_session, kim, "champion", i % 2 == 0, when)
        decide_in_arm(db_session, kim, "challenger", i != 0, when)
    outcome = experiments.analyse(
        session=db_session, rules=AbRules(min_samples_per_arm=30), auto_promote=True
    )
    assert outcome.decision == "promote", outcome.reason
    assert outcome.reason.startswith("challenger better: agreement")
    assert experiment.analysis["challenger"] == {"agreed": 29, "total": 30, "items": 30}
    assert service.get_alias(session=db_session, alias="champion", kind="detector") == champion_det


def test_a_challenger_not_shown_better_is_rolled_back(db_session, registry):
    _, _, candidate = registry
    start = utcnow() - timedelta(days=8)  # past the experiment's duration
    experiments.stage_challenger(session=db_session, candidate=candidate, share=0.1,
                                 actor_id=None, now=start)  # fmt: skip
    kim = make_user(db_session)
    for i in range(5):
        decide_in_arm(db_session, kim, "champion", True, start + timedelta(hours=i))
        decide_in_arm(db_session, kim, "challenger", True, start + timedelta(hours=i))
    outcome = experiments.analyse(session=db_session, rules=AbRules(), auto_promote=True)
    assert outcome.decision == "rollback"
    experiment = db_session.scalar(select(Experiment))
    assert experiment.result == "rolled_back"
    assert service.get_alias(session=db_session, alias="champion", kind="detector").version == (
        "det-1"
    )
    assert serving_plan(db_session)["challenger_detector_dir"] is None


def test_nothing_to_roll_back_or_promote_is_a_clear_refusal(db_session):
    with pytest.raises(experiments.NothingToDo, match="no earlier champion"):
        experiments.rollback(session=db_session, actor_id=None)
    with pytest.raises(experiments.NothingToDo, match="no experiment is running"):
        experiments.promote(session=db_session, actor_id=None)


def test_serve_follows_the_registry_without_a_restart(db_session, serve_app: ServeApp):
    """What the Serve process does every few seconds, done once: the registry's champion
    classifier (the tiny challenger checkpoint) reaches the live app as user_config."""
    from models.serve import runner

    models = serve_app.models
    options = main_app_settings(models)
    configured = {key: options.get(key) for key in runner.FOLLOWED}
    new_classifier = register_version(db_session, "classifier", "cls-new",
                             uri=str(models.challenger_classifier_dir))  # fmt: skip
    experiments.move_alias(session=db_session, alias="champion", version=new_classifier,
                           actor_id=None, why="test")  # fmt: skip
    try:
        applied = runner._follow_once(
            lambda: serving_plan(db_session), options, configured, dict(configured)
        )
        assert applied["classifier_dir"] == str(models.challenger_classifier_dir)
        assert applied["challenger_classifier_dir"] is None  # the registry runs no experiment
        health = httpx.get(serve_app.url, timeout=30).json()
        assert health["classifier_version"].startswith("challenger-classifier-")
        again = runner._follow_once(lambda: serving_plan(db_session), options, configured, applied)
        assert again is applied  # nothing changed: nothing deployed

        # A prompt change staged as challenger: same weights, the site's prompts and the
        # temperature fitted with them, 30 %.
        reworded = register_version(db_session, "classifier", "cls-new+v2-site",
                                    uri=str(models.challenger_classifier_dir),
                                    prompt_version=SITE_PROMPTS,
                                    metrics={"accuracy": 0.9, "temperature": 1.5})  # fmt: skip
        experiments.stage_challenger(session=db_session, candidate=reworded, share=0.3,
                                     actor_id=None)  # fmt: skip
        applied = runner._follow_once(lambda: serving_plan(db_session), options, configured,
                                      applied)  # fmt: skip
        assert applied["challenger_prompt_version"] == SITE_PROMPTS
        assert applied["challenger_temperature"] == 1.5
        arms = httpx.get(serve_app.url, timeout=30).json()["arms"]
        assert arms["challenger"]["prompt_version"].startswith(f"{SITE_PROMPTS}+")
        assert arms["challenger"]["prompt_version"].endswith("+T1.5")
        assert arms["champion"]["prompt_version"].startswith("v2+")
        assert arms["challenger"]["classifier_version"] == arms["champion"]["classifier_version"]
    finally:
        serve_app.deploy()  # the session's app as it was
