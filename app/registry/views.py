"""The ml role's models page: training runs with live progress, the experiment, versions,
and the buttons that start a run, promote the challenger or roll back.

Thin: every action is one service call; Serve picks up alias changes by itself
(app.registry.serving).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from app.auth.deps import MlDep
from app.config import get_settings
from app.db import SessionDep, utcnow
from app.i18n import translator
from app.learning import runs, trigger
from app.registry import experiments, service
from app.registry.tables import ModelAlias, ModelVersion
from app.storage import get_store
from app.web import language_for, render

router = APIRouter(tags=["models"])

FLASH_KEY = "models_flash"
MAX_VERSIONS = 50


@router.get("/ml/models", name="ml_models")
def models_page(request: Request, session: SessionDep, user: MlDep) -> Response:
    """Everything about serving models on one page; the runs block refreshes itself."""
    experiment = service.running_experiment(session=session)
    aliases: dict[int, list[str]] = {}
    for row in session.scalars(select(ModelAlias)):
        aliases.setdefault(row.model_version_id, []).append(row.alias)
    context = {
        "user": user,
        "now": utcnow(),
        "runs": runs.recent_runs(session=session, limit=10),
        "active": runs.active_run(session=session),
        "experiment": experiment,
        "arms": experiments.arm_agreement(session, experiment) if experiment else None,
        "versions": session.scalars(
            select(ModelVersion).order_by(ModelVersion.id.desc()).limit(MAX_VERSIONS)
        ).all(),
        "aliases": aliases,
        "checks": trigger.recent_checks(session=session, limit=5),
        "flash": request.session.pop(FLASH_KEY, None),
    }
    return render(request, "ml_models.html", context, block="runs")


def _back(request: Request, message: str) -> Response:
    request.session[FLASH_KEY] = message
    return RedirectResponse("/ml/models", status_code=303)


@router.post("/ml/retrain", name="ml_retrain")
def retrain_now(request: Request, session: SessionDep, user: MlDep) -> Response:
    t = translator(language_for(request, user))
    try:
        run = runs.start_run(session=session, store=get_store(), settings=get_settings(),
                             trigger="page", user_id=user.id)  # fmt: skip
    except runs.RunInProgress as exc:
        session.rollback()
        return _back(request, str(exc))
    session.commit()
    if run.status == "refused":
        return _back(request, t("models.refused", reasons="; ".join(run.refusal_reasons)))
    return _back(request, t("models.run_started", run=run.id))


@router.post("/ml/models/promote", name="ml_promote")
def promote(request: Request, session: SessionDep, user: MlDep) -> Response:
    t = translator(language_for(request, user))
    try:
        experiments.promote(session=session, actor_id=user.id, why=f"promoted by {user.username}")
    except experiments.NothingToDo as exc:
        session.rollback()
        return _back(request, str(exc))
    session.commit()
    return _back(request, t("models.promoted"))


@router.post("/ml/models/rollback", name="ml_rollback")
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
