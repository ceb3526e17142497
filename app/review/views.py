"""The review page: claim the next item, show its photos and regions, record the decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from app.auth.deps import ReviewerDep, is_htmx
from app.auth.tables import User
from app.config import get_settings
from app.db import SessionDep
from app.i18n import translator
from app.inspections.tables import Photo, Region
from app.review import service
from app.review.tables import ReviewTask
from app.web import language_for, render

router = APIRouter(tags=["review"])

MAX_NOTE = 2000
# Set by a decision made without JavaScript, shown once by the next GET /review.
NOTICE_SESSION_KEY = "review_notice"


@dataclass(frozen=True)
class PhotoView:
    """One photo and its regions, numbered across the whole inspection."""

    photo: Photo
    regions: list[tuple[int, Region]]


def visible_reason(task: ReviewTask) -> str:
    """Why the item is in the queue, as inspectors see it: audits look like any other item.

    An audit (a random sample of automatic decisions) only measures the automatic route
    if the inspector cannot tell it apart, so it shows as an ordinary uncertain item.
    """
    return "inference_unavailable" if task.reason == "inference_unavailable" else "uncertain"


def photo_views(task: ReviewTask) -> list[PhotoView]:
    by_photo: dict[int, list[Region]] = {}
    for region in task.inspection.regions:
        by_photo.setdefault(region.photo_id, []).append(region)
    views, number = [], 0
    for photo in task.inspection.photos:
        numbered = []
        for region in by_photo.get(photo.id, []):
            number += 1
            numbered.append((number, region))
        views.append(PhotoView(photo=photo, regions=numbered))
    return views


def _render_item(
    request: Request, session: Session, user: User, task: ReviewTask | None, notice: str | None
) -> Response:
    context: dict[str, object] = {"user": user, "task": None, "notice": notice}
    if task is not None:
        loaded = service.get_for_review(session=session, task_id=task.id)
        if loaded is not None:
            context |= {
                "task": loaded,
                "reason": visible_reason(loaded),
                "photos": photo_views(loaded),
            }
    return render(request, "review.html", context, block="item")


def _claim(session: Session, user: User) -> ReviewTask | None:
    lease = get_settings().lease_seconds
    return service.claim_next(session=session, user_id=user.id, lease_seconds=lease)


@router.get("/review", name="review")
def review(request: Request, session: SessionDep, user: ReviewerDep) -> Response:
    """The next item for this user (the same one again on a reload while the lease lasts)."""
    notice = request.session.pop(NOTICE_SESSION_KEY, None)
    return _render_item(request, session, user, _claim(session, user), notice)


@router.post("/review/{task_id}/decision", name="review_decision")
def decision(
    request: Request,
    task_id: int,
    session: SessionDep,
    user: ReviewerDep,
    verdict: Annotated[Literal["pass", "reject"], Form()],
    note: Annotated[str, Form(max_length=MAX_NOTE)] = "",
) -> Response:
    """Record the decision and answer with the next item, in place of the decided one."""
    t = translator(language_for(request, user))
    notice = None
    try:
        service.decide(
            session=session, task_id=task_id, user_id=user.id, verdict=verdict, note=note
        )
    except service.TaskNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except service.LeaseLost as exc:
        notice = t("review.lease_lost_decided") if exc.already_decided else t("review.lease_lost")
    if not is_htmx(request):
        # Without JavaScript: redirect, so a reload does not post the decision again.
        if notice:
            request.session[NOTICE_SESSION_KEY] = notice
        return RedirectResponse("/review", status_code=303)
    return _render_item(request, session, user, _claim(session, user), notice)
