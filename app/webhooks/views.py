"""/admin/webhooks: an admin registers receivers, reads their delivery logs and replays.

Thin adapters over app.webhooks.service, which writes every change to the audit log.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from app.admin.views import FLASH_KEY
from app.auth.deps import AdminDep
from app.auth.tables import User
from app.db import RowId, SessionDep
from app.deps import TranslatorDep
from app.i18n import Translator
from app.pages import render
from app.policy.webhooks import EVENTS, MAX_SECRET, MAX_URL, BadEndpoint
from app.spec import ROLE_PAGE, SEE_OTHER, page
from app.webhooks import service
from app.webhooks.tables import OPEN, WebhookDelivery

router = APIRouter(
    prefix="/admin/webhooks",
    tags=["admin"],
    default_response_class=HTMLResponse,
    responses=ROLE_PAGE,
)
# Form limits well above the rules' own, so that a long URL or secret is refused with the
# rule's sentence (app.policy.webhooks) rather than a bare "bad request".
FORM_MAX = 4 * MAX_URL


def _refusal(t: Translator, exc: BadEndpoint) -> str:
    messages = {
        "url": t("webhooks.invalid.url"),
        "url_long": t("webhooks.invalid.url_long", max=MAX_URL),
        "url_space": t("webhooks.invalid.url_space"),
        "url_scheme": t("webhooks.invalid.url_scheme"),
        "url_credentials": t("webhooks.invalid.url_credentials"),
        "events": t("webhooks.invalid.events"),
        "secret": t("webhooks.invalid.secret", max=MAX_SECRET),
    }
    return messages.get(exc.code, str(exc))


def _list_page(
    request: Request, session: Session, user: User, *, error: str | None = None,
    created: dict[str, Any] | None = None, form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:  # fmt: skip
    context = {
        "user": user,
        "endpoints": service.list_endpoints(session=session),
        "events": list(EVENTS),
        "created": created,
        "error": error,
        "form": form or {"url": "", "events": list(EVENTS)},
        "flash": request.session.pop(FLASH_KEY, None),
    }
    return render(request, "admin_webhooks.html", context, status_code=status_code)


def _back(request: Request, path: str, message: str) -> Response:
    request.session[FLASH_KEY] = message
    return RedirectResponse(path, status_code=303)


@router.get("", name="admin_webhooks")
def webhooks_page(request: Request, session: SessionDep, user: AdminDep) -> Response:
    """Every endpoint with its deliveries counted, and the form to add one."""
    return _list_page(request, session, user)


@router.post("")
def add_webhook(
    request: Request,
    session: SessionDep,
    user: AdminDep,
    t: TranslatorDep,
    url: Annotated[str, Form(max_length=FORM_MAX)],
    events: Annotated[list[str] | None, Form(max_length=10)] = None,
    secret: Annotated[str, Form(max_length=FORM_MAX)] = "",
) -> Response:
    """Register an endpoint and show its secret on this answer only."""
    form = {"url": url, "events": events or []}
    try:
        endpoint, signing_secret = service.add_endpoint(
            session=session, url=url, events=events or [], secret=secret.strip() or None,
            actor_id=user.id,
        )  # fmt: skip
        session.commit()
    except BadEndpoint as exc:
        session.rollback()
        error = _refusal(t, exc)
        return _list_page(request, session, user, error=error, form=form, status_code=400)
    # A secret the admin brought is theirs already: only a generated one is shown.
    created = {"url": endpoint.url, "secret": None if secret.strip() else signing_secret}
    response = _list_page(request, session, user, created=created)
    # The secret is in this page only: keep it out of caches and the back/forward cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/{endpoint_id}/remove", **SEE_OTHER)
def remove_webhook(
    request: Request, endpoint_id: RowId, session: SessionDep, user: AdminDep, t: TranslatorDep
) -> Response:
    """Remove an endpoint: nothing more is sent to it (its rows stay, for the record)."""
    removed = service.remove_endpoint(session=session, endpoint_id=endpoint_id, actor_id=user.id)
    session.commit()
    message = t("webhooks.removed", url=removed.url) if removed else t("webhooks.gone")
    return _back(request, "/admin/webhooks", message)


@router.get("/{endpoint_id}", name="admin_webhook_log", responses=page(404))
def delivery_log(
    request: Request, endpoint_id: RowId, session: SessionDep, user: AdminDep
) -> Response:
    """An endpoint's newest deliveries with every attempt; the log refreshes itself while
    a delivery is still being tried."""
    endpoint = service.get_endpoint(session=session, endpoint_id=endpoint_id)
    if endpoint is None:
        raise HTTPException(404, f"no webhook endpoint {endpoint_id}")
    deliveries = service.delivery_log(session=session, endpoint_id=endpoint_id)
    context = {
        "user": user,
        "endpoint": endpoint,
        "deliveries": [(d, _what(d)) for d in deliveries],
        "active": any(d.status in OPEN for d in deliveries),
        "flash": request.session.pop(FLASH_KEY, None),
    }
    return render(request, "admin_webhook_log.html", context, block="log")


@router.post("/deliveries/{delivery_id}/replay", **SEE_OTHER, responses=page(404))
def replay_delivery(
    request: Request, delivery_id: RowId, session: SessionDep, user: AdminDep, t: TranslatorDep
) -> Response:
    """Send a delivery again: the same event (same id and body), signed afresh."""
    delivery = service.replay(session=session, delivery_id=delivery_id, actor_id=user.id)
    if delivery is None:
        raise HTTPException(404, f"no webhook delivery {delivery_id}")
    endpoint_id = delivery.endpoint_id
    session.commit()
    return _back(request, f"/admin/webhooks/{endpoint_id}", t("webhooks.replayed", id=delivery_id))


def _what(delivery: WebhookDelivery) -> dict[str, Any]:
    """What the log shows of the event sent: the station's id for the item, and the verdict
    (read back from the body; nothing while the first attempt has not built it)."""
    body = json.loads(delivery.event.body) if delivery.event.body else {}
    inspection = body.get("inspection", {})
    return {
        "external_id": inspection.get("external_id"),
        "verdict": (inspection.get("outcome") or {}).get("verdict"),
    }
