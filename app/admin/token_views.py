"""Administration of station tokens: list, create (shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.admin.views import FLASH_KEY, MAX_NAME
from app.auth import service
from app.auth.deps import AdminDep
from app.db import RowId, SessionDep
from app.deps import TranslatorDep
from app.pages import render
from app.spec import ROLE_PAGE, SEE_OTHER

router = APIRouter(
    prefix="/admin", tags=["admin"], default_response_class=HTMLResponse, responses=ROLE_PAGE
)


def _page(
    request: Request, session: SessionDep, user: AdminDep, *, new_token: str | None = None,
    station: str = "", error: str | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    context = {
        "user": user,
        "tokens": service.list_tokens(session=session),
        "new_token": new_token,
        "station": station,
        "error": error,
        "flash": request.session.pop(FLASH_KEY, None),
    }
    return render(request, "admin_tokens.html", context, status_code=status_code)


@router.get("/tokens", name="admin_tokens")
def tokens_page(request: Request, session: SessionDep, user: AdminDep) -> Response:
    """Every station token (never the token itself: only its hash is stored)."""
    return _page(request, session, user)


@router.post("/tokens")
def create_token(
    request: Request,
    session: SessionDep,
    user: AdminDep,
    t: TranslatorDep,
    station: Annotated[str, Form(max_length=MAX_NAME)],
    scope: Annotated[str, Form(max_length=MAX_NAME)] = "station",
) -> Response:
    """Create a token and show it on this answer only; it cannot be shown again."""
    try:
        token = service.create_station_token(
            session=session, station=station, actor_id=user.id, scope=scope
        )
        session.commit()
    except service.InvalidInput as exc:
        session.rollback()
        return _page(request, session, user, error=t(f"admin.invalid.{exc.field}"), status_code=400)
    response = _page(request, session, user, new_token=token, station=station.strip())
    # The token is in this page only: keep it out of caches and the back/forward cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke", **SEE_OTHER)
def revoke_token(
    request: Request, token_id: RowId, session: SessionDep, user: AdminDep, t: TranslatorDep
) -> Response:
    """Revoke a token: the station gets 401 from its next request on."""
    row = service.revoke_token(session=session, token_id=token_id, actor_id=user.id)
    session.commit()
    message = t("admin.token_revoked", station=row.station) if row else t("admin.token_gone")
    request.session[FLASH_KEY] = message
    return RedirectResponse("/admin/tokens", status_code=303)
