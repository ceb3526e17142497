"""Staging a candidate as challenger, the A/B analysis, promotion and rollback.

Serving follows the aliases and the running experiment (app.registry.serving), so every
function here only changes rows; each alias move is an audit event with who, from what
and to what. The pure parts are app.policy.ab (the test) and app.policy.promotion (the
gate, checked again here: a version that failed its gate never serves).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, delete, func, literal, select, true
from sqlalchemy.orm import Session

from app.auth.tables import AuditEvent
from app.db import utcnow
from app.inspections.tables import Inspection
from app.policy import ab
from app.policy.routing import NOT_A_DEFECT
from app.registry import service
from app.registry.tables import MODEL_KINDS, Experiment, ModelAlias, ModelVersion
from app.review.tables import Decision, DecisionRegion, ReviewTask

ARMS = ("champion", "challenger")


class NothingToDo(RuntimeError):
    """The action does not apply now (no experiment runs, no earlier champion...)."""


@dataclass(frozen=True)
class Outcome:
    experiment_id: int
    decision: str  # continue | promote | rollback | awaiting_confirmation
    reason: str


def _audit(
    session: Session, actor_id: int | None, action: str, subject: str, **details: Any
) -> None:
    session.add(AuditEvent(actor_id=actor_id, action=action, subject=subject, details=details))


def move_alias(
    *, session: Session, alias: str, version: ModelVersion, actor_id: int | None, why: str
) -> None:
    """Point an alias at a version (the gate is checked by set_alias) and audit the move."""
    before = service.get_alias(session=session, alias=alias, kind=version.kind)
    service.set_alias(session=session, alias=alias, model_version=version)
    _audit(session, actor_id, "model_alias.set", f"{alias}:{version.kind}",
           from_version_id=before.id if before else None, to_version_id=version.id,
           why=why)  # fmt: skip


def register_configured_champions(
    *,
    session: Session,
    detector_uri: str,
    classifier_uri: str,
    cache_dir: Any = None,
    prompt_version: str | None = None,
) -> list[ModelVersion]:
    """A site that started from LOUPE_DETECTOR_URI / LOUPE_CLASSIFIER_URI has no champion in
    the registry; the first candidate needs one to be compared with. Registers each
    configured model whose kind has no champion yet (the classifier with the prompts it
    serves with), and makes it the champion."""
    from models.loading import model_version as version_of
    from models.loading import resolve_model_dir

    registered = []
    for kind, uri in (("detector", detector_uri), ("classifier", classifier_uri)):
        if not uri or service.get_alias(session=session, alias="champion", kind=kind):
            continue
        path = Path(resolve_model_dir(uri, cache_dir))
        prompts = prompt_version if kind == "classifier" else None
        row = service.register_model_version(
            session=session, kind=kind, version=version_of(path), uri=uri,
            content_hash=content_hash(path, uri, prompts), prompt_version=prompts,
        )  # fmt: skip
        move_alias(session=session, alias="champion", version=row, actor_id=None,
                   why="the configured model, registered as the first champion")  # fmt: skip
        registered.append(row)
    return registered


def content_hash(path: Path, uri: str, prompt_version: str | None = None) -> str:
    """What a version pins: every file of the model and, for a classifier, its prompts
    (the file and its few-shot images), so a prompt edited in place is a different model."""
    from models.model_store import manifest_of
    from models.prompts import load_prompts

    digest = hashlib.sha256()
    digest.update(json.dumps(manifest_of(path), sort_keys=True).encode() if path.is_dir()
                  else uri.encode())  # fmt: skip
    if prompt_version:
        digest.update(load_prompts(prompt_version).content_hash().encode())
    return digest.hexdigest()


def _clear_challenger(session: Session, actor_id: int | None, why: str) -> None:
    for kind in MODEL_KINDS:
        before = service.get_alias(session=session, alias="challenger", kind=kind)
        if before is None:
            continue
        session.execute(
            delete(ModelAlias).where(ModelAlias.alias == "challenger", ModelAlias.kind == kind)
        )
        _audit(session, actor_id, "model_alias.clear", f"challenger:{kind}",
               from_version_id=before.id, to_version_id=None, why=why)  # fmt: skip


def stage_challenger(
    *,
    session: Session,
    candidate: ModelVersion,
    share: float,
    actor_id: int | None,
    now: datetime | None = None,
) -> Experiment:
    """Serve a gated candidate to `share` of the items beside the champion.

    The other kind stays the champion's in both arms, so the experiment measures this
    one change. Refused for a version that failed its gate and while another runs.
    """
    champion = {k: service.get_alias(session=session, alias="champion", kind=k)
                for k in MODEL_KINDS}  # fmt: skip
    classifier = champion["classifier"]
    if classifier is None:
        raise NothingToDo("there is no champion classifier in the registry to compare with")
    current = champion[candidate.kind]
    if current is not None and current.id == candidate.id:
        raise NothingToDo(f"{candidate.version} is the champion already")
    move_alias(session=session, alias="challenger", version=candidate, actor_id=actor_id,
               why="staged as challenger")  # fmt: skip
    experiment = service.start_experiment(
        session=session,
        name=f"{candidate.kind}-{candidate.version}"[:100],
        champion=service.Arm(classifier=classifier, detector=champion["detector"]),
        challenger=service.Arm(
            classifier=candidate if candidate.kind == "classifier" else classifier,
            detector=candidate if candidate.kind == "detector" else champion["detector"],
        ),
        challenger_share=share,
    )
    if now is not None:
        experiment.started_at = now
    _audit(session, actor_id, "experiment.start", f"experiment:{experiment.id}",
           share=share, challenger_version_id=candidate.id)  # fmt: skip
    session.flush()
    return experiment


def arm_agreement(
    session: Session, experiment: Experiment, audit_rate: float
) -> dict[str, ab.Estimate]:
    """Per arm, the models against the inspectors on items inspected during the
    experiment (decisions in effect), on what the challenger changes. A new detector: each
    model region people left as a defect agrees; one they called not a defect, and a box
    they drew for a missed defect, disagree. A new classifier or prompt: the item verdict
    the models proposed agrees or not. Audited items weigh 1 / `audit_rate`
    (app.policy.ab says why)."""
    decided = (
        select(Inspection.arm, Inspection.is_audit)
        .select_from(Decision)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)  # the decision in effect
        .join(Inspection, Inspection.id == Decision.inspection_id)
        .where(_during(experiment), Inspection.arm.is_not(None))
    )
    if changes_detector(experiment):
        answers = func.count(DecisionRegion.id)
        agreed = answers.filter(DecisionRegion.region_id.is_not(None),
                                DecisionRegion.defect_type != NOT_A_DEFECT)  # fmt: skip
        measured = (
            decided.add_columns(agreed, answers)
            .outerjoin(DecisionRegion, DecisionRegion.decision_id == Decision.id)
            .group_by(Decision.id, Inspection.arm, Inspection.is_audit)
        )
    else:
        same = case((Decision.verdict == Decision.model_verdict, 1), else_=0)
        measured = decided.add_columns(same, literal(1)).where(Decision.model_verdict.is_not(None))
    rows = session.execute(measured).all()
    audited = 1.0 / audit_rate if audit_rate > 0 else 1.0
    evidence: dict[str, list[ab.ItemEvidence]] = {name: [] for name in ARMS}
    for arm, is_audit, agreed_units, units in rows:
        if arm in evidence:
            weight = audited if is_audit else 1.0
            evidence[arm].append(ab.ItemEvidence(agreed_units, units, weight))
    return {name: ab.estimate(items) for name, items in evidence.items()}


def changes_detector(experiment: Experiment) -> bool:
    """Whether the challenger serves another detector (judged on its boxes) rather than
    only another classifier or prompt (judged on the verdicts it proposed)."""
    return experiment.challenger_detector_id != experiment.champion_detector_id


def _during(experiment: Experiment) -> Any:
    ended = experiment.ended_at
    return and_(
        Inspection.created_at >= experiment.started_at,
        Inspection.created_at < ended if ended is not None else true(),
    )


def analyse(
    *,
    session: Session,
    rules: ab.AbRules,
    auto_promote: bool,
    now: datetime | None = None,
) -> Outcome | None:
    """Beat's hourly look at the running experiment; None when none runs.

    A "promote" is carried out at once when auto_promote is on; otherwise it waits for an
    ml user to confirm (`promote`), and the experiment keeps serving meanwhile.
    """
    now = now or utcnow()
    experiment = service.running_experiment(session=session)
    if experiment is None:
        return None
    days = (now - experiment.started_at).total_seconds() / 86400
    arms = arm_agreement(session, experiment, rules.audit_rate)
    measure = "region agreement" if changes_detector(experiment) else "agreement"
    result = ab.analyse(arms["champion"], arms["challenger"], days, rules, measure=measure)
    figures = {arm: {"agreed": e.agreed, "total": e.total, "items": e.items}
               for arm, e in arms.items()}  # fmt: skip
    decision: str = result.decision
    if decision == "promote" and not auto_promote:
        decision = "awaiting_confirmation"
    experiment.analysis = {
        "at": now.isoformat(), "decision": decision, "reason": result.reason,
        "z": result.z, "p_value": result.p_value, "difference": result.difference,
        **figures,
    }  # fmt: skip
    if decision == "promote":
        promote(session=session, actor_id=None, why=result.reason, now=now)
    elif decision == "rollback":
        rollback(session=session, actor_id=None, why=result.reason, now=now)
    session.commit()
    return Outcome(experiment.id, decision, result.reason)


def promote(
    *, session: Session, actor_id: int | None, why: str = "promoted", now: datetime | None = None
) -> Experiment:
    """The running experiment's challenger becomes champion; the experiment ends."""
    experiment = service.running_experiment(session=session)
    if experiment is None:
        raise NothingToDo("no experiment is running: there is no challenger to promote")
    for version_id in (experiment.challenger_detector_id, experiment.challenger_classifier_id):
        version = session.get(ModelVersion, version_id) if version_id is not None else None
        if version is None:
            continue
        champion = service.get_alias(session=session, alias="champion", kind=version.kind)
        if champion is None or champion.id != version.id:
            move_alias(session=session, alias="champion", version=version, actor_id=actor_id,
                       why=why)  # fmt: skip
    _end(session, experiment, "promoted", actor_id, why, now)
    return experiment


def rollback(
    *, session: Session, actor_id: int | None, why: str = "rolled back", now: datetime | None = None
) -> str:
    """One action to undo the last change: end a running experiment (the champion keeps
    serving), or else put back the champion that served before the last promotion."""
    experiment = service.running_experiment(session=session)
    if experiment is not None:
        _end(session, experiment, "rolled_back", actor_id, why, now)
        return f"experiment {experiment.name} ended; the champion serves every item"
    last = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.action == "model_alias.set", AuditEvent.subject.like("champion:%"))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    previous_id = last.details.get("from_version_id") if last is not None else None
    if previous_id is None:
        raise NothingToDo("there is no earlier champion to roll back to")
    previous = session.get(ModelVersion, previous_id)
    assert previous is not None
    move_alias(session=session, alias="champion", version=previous, actor_id=actor_id,
               why=f"rollback: {why}")  # fmt: skip
    return f"champion {previous.kind} is {previous.version} again"


def _end(
    session: Session,
    experiment: Experiment,
    result: str,
    actor_id: int | None,
    why: str,
    now: datetime | None,
) -> None:
    service.stop_experiment(session=session, experiment=experiment, now=now)
    experiment.result = result
    _clear_challenger(session, actor_id, why)
    _audit(session, actor_id, f"experiment.{result}", f"experiment:{experiment.id}", why=why)
    session.flush()
