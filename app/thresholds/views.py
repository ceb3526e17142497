"""/ml/models' review band: apply or dismiss a proposed band, roll back the one in force.

Thin: each action is a service call (app.thresholds.bands), a commit, and a message on
/ml/models. The page itself is the registry's (app.registry.views) with this area's
section in it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from app.auth.deps import MlDep
from app.db import RowId, SessionDep
from app.deps import SettingsDep, TranslatorDep
from app.spec import ROLE_PAGE, SEE_OTHER
from app.thresholds import bands

router = APIRouter(tags=["thresholds"], default_response_class=HTMLResponse, responses=ROLE_PAGE)
MODELS_PAGE = "/ml/models"
FLASH_KEY = "models_flash"  # the models page shows it (app.registry.views)


def _back(request: Request, message: str) -> Response:
    request.session[FLASH_KEY] = message
    return RedirectResponse(MODELS_PAGE, status_code=303)


def _refused(request: Request, session: Session, message: str) -> Response:
    """Nothing changed (the proposal was already closed, nothing to roll back): say why."""
    session.rollback()
    return _back(request, message)


@router.post("/ml/bands/{band_id}/apply", name="ml_band_apply", **SEE_OTHER)
def apply_band(
    request: Request, band_id: RowId, session: SessionDep, user: MlDep, t: TranslatorDep
) -> Response:
    try:
        row = bands.apply(session, band_id=band_id, user_id=user.id)
    except bands.BandError:
        return _refused(request, session, t("bands.not_open"))
    session.commit()
    bands.forget()
    return _back(request, t("bands.applied", band=f"{row.high:.2f}:{row.low:.2f}"))


@router.post("/ml/bands/{band_id}/dismiss", name="ml_band_dismiss", **SEE_OTHER)
def dismiss_band(
    request: Request, band_id: RowId, session: SessionDep, user: MlDep, t: TranslatorDep
) -> Response:
    try:
        bands.dismiss(session, band_id=band_id, user_id=user.id)
    except bands.BandError:
        return _refused(request, session, t("bands.not_open"))
    session.commit()
    return _back(request, t("bands.dismissed"))


@router.post("/ml/bands/rollback", name="ml_band_rollback", **SEE_OTHER)
def roll_back_band(
    request: Request, session: SessionDep, user: MlDep, settings: SettingsDep, t: TranslatorDep
) -> Response:
    try:
        band = bands.roll_back(session, settings=settings, user_id=user.id)
    except bands.BandError:
        return _refused(request, session, t("bands.nothing_to_roll_back"))
    session.commit()
    bands.forget()
    return _back(request, t("bands.rolled_back", band=str(band)))
