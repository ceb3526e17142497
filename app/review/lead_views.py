"""The lead's view of the queue: backlog by band, SLA, who holds what; release and send back."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.auth.deps import LeadDep
from app.db import RowId, SessionDep, utcnow
from app.deps import SettingsDep, TranslatorDep
from app.i18n import duration
from app.pages import render
from app.review import decisions, reopen, service, stats
from app.spec import ROLE_PAGE, SEE_OTHER, page
from app.thresholds.bands import settings_in_force

router = APIRouter(tags=["review"], default_response_class=HTMLResponse, responses=ROLE_PAGE)

FLASH_KEY = "queue_flash"
MAX_SEARCH = 200


@router.get("/review/queue", name="review_queue")
def queue(
    request: Request, session: SessionDep, user: LeadDep, settings: SettingsDep, q: str = ""
) -> Response:
    """The queue at a glance; HTMX refreshes the numbers in place every few seconds."""
    now = utcnow()
    search = q.strip()[:MAX_SEARCH]
    band = settings_in_force(settings).routing.thresholds  # the band items are routed with
    overview = stats.queue_overview(
        session=session,
        now=now,
        sla_seconds=settings.review_sla_seconds,
        aging_weight=settings.review_aging_weight,
        low=band.low,
        high=band.high,
    )
    context = {
        "user": user,
        "now": now,
        "overview": overview,
        "holdings": stats.holdings(session=session, now=now),
        "inspectors": stats.inspectors_today(
            session=session, now=now, timezone=settings.site_timezone
        ),
        "recent": stats.recent_decisions(session=session, search=search),
        "search": search,
        "flash": request.session.pop(FLASH_KEY, None),
        "duration": duration,
    }
    return render(request, "review_queue.html", context, block="live")


def _back(request: Request, message: str) -> Response:
    request.session[FLASH_KEY] = message
    return RedirectResponse("/review/queue", status_code=303)


@router.post("/review/tasks/{task_id}/release", name="review_release", **SEE_OTHER)
def release(
    request: Request, task_id: RowId, session: SessionDep, user: LeadDep, t: TranslatorDep
) -> Response:
    """Take an item away from whoever holds it; it goes back to the queue at once."""
    holder = service.release_task(session=session, task_id=task_id, actor_id=user.id)
    return _back(request, t("queue.released" if holder else "queue.not_held", task=task_id))


@router.post(
    "/review/tasks/{task_id}/send-back", name="review_send_back", **SEE_OTHER, responses=page(404)
)
def send_back(
    request: Request, task_id: RowId, session: SessionDep, user: LeadDep, t: TranslatorDep
) -> Response:
    """Reopen a decided item for another review; its decision stays until a new one."""
    try:
        reopen.send_back(session=session, task_id=task_id, actor_id=user.id)
    except decisions.TaskNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except decisions.Refused:
        return _back(request, t("queue.not_decided", task=task_id))
    return _back(request, t("queue.sent_back", task=task_id))
