"""The ml role's models page: training runs with live progress, the experiment, versions,
and the buttons that start a run, promote the challenger, roll back or freeze test items.

Thin: every action is one service call; Serve picks up alias changes by itself
(app.registry.serving).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from app.auth.deps import MlDep, is_htmx
from app.auth.tables import AuditEvent
from app.db import SessionDep, utcnow
from app.deps import SettingsDep, StoreDep, TranslatorDep
from app.i18n import say
from app.instructions.kinds import KINDS
from app.learning import classifier, runs, testset, trigger
from app.learning.report import CLASSIFIER_HEADLINE, refusals
from app.learning.tuning import start_tuning_run, tune_kinds
from app.pages import render
from app.registry import experiments, service
from app.registry.tables import ModelAlias, ModelVersion
from app.spec import ROLE_PAGE, SEE_OTHER
from app.thresholds import bands
from models.prompts import available_versions

router = APIRouter(tags=["models"], default_response_class=HTMLResponse, responses=ROLE_PAGE)

FLASH_KEY = "models_flash"
# The figures the versions table shows for each kind of model.
HEADLINE = {
    "detector": ("map50", "precision", "recall"),
    "classifier": (*CLASSIFIER_HEADLINE[:2], "temperature"),
}
MAX_VERSIONS = 50
FREEZE_DEFAULT = 50
FREEZE_MAX = 10_000


@router.get("/ml/models", name="ml_models")
def models_page(
    request: Request, session: SessionDep, user: MlDep, settings: SettingsDep
) -> Response:
    """Everything about serving models on one page; the runs block refreshes itself."""
    context = {
        "user": user,
        "now": utcnow(),
        "runs": runs.recent_runs(session=session, limit=10),
        "active": runs.active_run(session=session),
        "refusals": refusals,
        "say": say,
    }
    if is_htmx(request):
        # The runs block polls itself every 2 s while a run is active: it reads the runs
        # only, not the test set's counts or the experiment's agreement, which grow with
        # the site's history.
        return render(request, "ml_models.html", context, block="runs")
    experiment = service.running_experiment(session=session)
    aliases: dict[int, list[str]] = {}
    for row in session.scalars(select(ModelAlias)):
        aliases.setdefault(row.model_version_id, []).append(row.alias)
    champion = classifier.champion_classifier(session, settings)
    context |= {
        "experiment": experiment,
        "arms": (
            experiments.arm_agreement(session, experiment, settings.audit_rate)
            if experiment
            else None
        ),
        "arm_measure": (
            "regions" if experiment and experiments.changes_detector(experiment) else "verdicts"
        ),
        "versions": session.scalars(
            select(ModelVersion).order_by(ModelVersion.id.desc()).limit(MAX_VERSIONS)
        ).all(),
        "aliases": aliases,
        "checks": trigger.recent_checks(session=session, limit=10),
        "test_set_size": testset.size_of_test_set(session=session),
        "test_set_eligible": None,  # counted by ml_test_set_eligible once the page is shown
        "freeze_default": FREEZE_DEFAULT,
        "freeze_max": FREEZE_MAX,
        "prompt_versions": available_versions(),
        "champion_prompts": champion.prompt_version if champion else None,
        "instruction_kinds": KINDS,
        "tune_kinds": tune_kinds(settings.tune_kinds),
        "headline": HEADLINE,
        "bands": bands.overview(session),
        "settings_band": f"{settings.threshold_high:.2f}:{settings.threshold_low:.2f}",
        "flash": request.session.pop(FLASH_KEY, None),
    }
    return render(request, "ml_models.html", context, block="runs")


def _back(request: Request, message: str) -> Response:
    request.session[FLASH_KEY] = message
    return RedirectResponse("/ml/models", status_code=303)


@router.post("/ml/retrain", name="ml_retrain", **SEE_OTHER)
def retrain_now(
    request: Request,
    session: SessionDep,
    user: MlDep,
    settings: SettingsDep,
    store: StoreDep,
    t: TranslatorDep,
) -> Response:
    try:
        run = runs.start_run(session=session, store=store, settings=settings,
                             trigger="page", user_id=user.id)  # fmt: skip
    except runs.RunInProgress as exc:
        session.rollback()
        return _back(request, t("models.run_in_progress", run=exc.run_id))
    session.commit()
    if run.status == "refused":
        return _back(request, t("models.refused", reasons="; ".join(refusals(run, t))))
    return _back(request, t("models.run_started", run=run.id))


@router.post("/ml/classifier/evaluate", name="ml_evaluate_classifier", **SEE_OTHER)
def evaluate_classifier(
    request: Request,
    session: SessionDep,
    user: MlDep,
    settings: SettingsDep,
    store: StoreDep,
    t: TranslatorDep,
    prompt_version: Annotated[str, Form()] = "",
    uri: Annotated[str, Form()] = "",
    calibrate: Annotated[bool, Form()] = False,
) -> Response:
    """Queue the evaluation of a classifier candidate: new prompts, new weights, or both;
    or the champion's calibration."""
    try:
        run = classifier.start_classifier_run(
            session=session, store=store, settings=settings, trigger="page",
            uri=uri, prompt_version=prompt_version, calibrate=calibrate, user_id=user.id,
        )  # fmt: skip
    except runs.RunInProgress as exc:
        session.rollback()
        return _back(request, t("models.run_in_progress", run=exc.run_id))
    except classifier.BadCandidate as exc:
        session.rollback()
        return _back(request, t(f"models.bad_candidate.{exc.reason}", **exc.params))
    session.commit()
    if run.status == "refused":
        return _back(request, t("models.refused", reasons="; ".join(refusals(run, t))))
    candidate = run.candidate or {}
    started = "models.calibrate_started" if calibrate else "models.candidate_started"
    return _back(request, t(started, run=run.id, uri=candidate.get("uri"),
                            prompts=candidate.get("prompt_version")))  # fmt: skip


@router.post("/ml/classifier/tune", name="ml_tune_classifier", **SEE_OTHER)
def tune_classifier(
    request: Request,
    session: SessionDep,
    user: MlDep,
    settings: SettingsDep,
    store: StoreDep,
    t: TranslatorDep,
    kinds: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Queue an instruction-tuning run on the champion (kinds as ticked, else the site's)."""
    try:
        chosen = tune_kinds(",".join(kinds)) if kinds else None
        run = start_tuning_run(session=session, store=store, settings=settings, trigger="page",
                               user_id=user.id, kinds=chosen)  # fmt: skip
    except runs.RunInProgress as exc:
        session.rollback()
        return _back(request, t("models.run_in_progress", run=exc.run_id))
    except classifier.BadCandidate as exc:
        session.rollback()
        return _back(request, t(f"models.bad_candidate.{exc.reason}", **exc.params))
    session.commit()
    if run.status == "refused":
        return _back(request, t("models.refused", reasons="; ".join(refusals(run, t))))
    tune = (run.candidate or {}).get("tune", {})
    return _back(request, t("models.tune_started", run=run.id, kinds=",".join(tune["kinds"]),
                            examples=tune["examples"]))  # fmt: skip


@router.post("/ml/models/promote", name="ml_promote", **SEE_OTHER)
def promote(request: Request, session: SessionDep, user: MlDep, t: TranslatorDep) -> Response:
    try:
        experiments.promote(session=session, actor_id=user.id, why=f"promoted by {user.username}")
    except experiments.NothingToDo as exc:
        session.rollback()
        return _back(request, str(exc))
    session.commit()
    return _back(request, t("models.promoted"))


@router.post("/ml/models/rollback", name="ml_rollback", **SEE_OTHER)
def rollback(request: Request, session: SessionDep, user: MlDep) -> Response:
    try:
        message = experiments.rollback(
            session=session, actor_id=user.id, why=f"rolled back by {user.username}"
        )
    except experiments.NothingToDo as exc:
        session.rollback()
        return _back(request, str(exc))
    session.commit()
    return _back(request, message)


@router.get("/ml/test-set/eligible", name="ml_test_set_eligible")
def test_set_eligible(request: Request, session: SessionDep, user: MlDep) -> Response:
    """How many verified items could be frozen: the models page asks once it is shown."""
    context = {"user": user, "test_set_eligible": testset.count_eligible(session=session)}
    return render(request, "ml_models.html", context, block="eligible", fragment=True)


def _freeze_count(text: str) -> int | None:
    """The number of items asked for, or None unless it is a whole number in 1..FREEZE_MAX."""
    text = text.strip()
    # ASCII digits only: int() would also take "-1", "1_000" or other scripts' digits.
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(FREEZE_MAX)):
        return None
    count = int(text)
    return count if 1 <= count <= FREEZE_MAX else None


@router.post("/ml/test-set/freeze", name="ml_freeze_test", **SEE_OTHER)
def freeze_test(
    request: Request,
    session: SessionDep,
    user: MlDep,
    t: TranslatorDep,
    count: Annotated[str, Form()] = "",
) -> Response:
    """Freeze up to `count` more verified items, never trained on, into the test set."""
    # Taken as text and checked here, so a typo comes back as a message on the page
    # rather than as FastAPI's 422 JSON.
    asked = _freeze_count(count)
    if asked is None:
        return _back(request, t("models.freeze_invalid", max=FREEZE_MAX))
    added = len(testset.freeze_test_items(session=session, count=asked, user_id=user.id))
    total = testset.size_of_test_set(session=session)
    if added:
        # A person changed what every model is judged on, for good: say who (the CLI has no
        # actor to name; its items carry added_by_id NULL).
        details = {"asked": asked, "added": added, "total": total}
        session.add(AuditEvent(actor_id=user.id, action="test_set.freeze", subject="test_set",
                               details=details))  # fmt: skip
    session.commit()
    if not added:
        return _back(request, t("models.frozen_none", total=total))
    key = "models.frozen" if added == asked else "models.frozen_fewer"
    return _back(request, t(key, added=added, asked=asked, total=total))
