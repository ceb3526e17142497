"""The review page: the item on screen, its decision, undo, and the lease heartbeat.

Every answer to a decision is the next item, swapped in by HTMX in place of the decided
one. The inspector holds the item on screen and the one after it (app.review.service.claim),
whose photos the browser loads while the current one is being looked at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from app.auth.deps import ReviewerDep, is_htmx
from app.auth.tables import User
from app.config import Settings
from app.db import RowId, SessionDep, utcnow
from app.deps import LanguageDep, SettingsDep, TranslatorDep
from app.i18n import duration, label
from app.pages import render
from app.review import decisions, edits, presenters, reopen, service, stats
from app.review.keys_views import keyboard_for
from app.review.priority import SEVERITY_RANK
from app.review.rules import rules_for
from app.review.tables import Decision
from app.spec import NO_CONTENT, ROLE_PAGE, page

router = APIRouter(tags=["review"], default_response_class=HTMLResponse, responses=ROLE_PAGE)

MAX_NOTE = decisions.MAX_NOTE
MAX_EDITS_JSON = 100_000
# Set by a decision made without JavaScript, shown once by the next GET /review.
NOTICE_SESSION_KEY = "review_notice"


def _undo_offer(
    decision: Decision | None, now: datetime, undo_seconds: int
) -> dict[str, Any] | None:
    if decision is None:
        return None
    left = undo_seconds - (now - decision.created_at).total_seconds()
    if left <= 0:
        return None
    return {"id": decision.id, "verdict": decision.verdict, "seconds": int(left + 0.999)}


def item_context(
    session: Session, user: User, now: datetime, settings: Settings, *, leases_only: bool = True
) -> dict[str, Any]:
    """Claim the user's items and describe the one on screen; commits the transaction.

    One transaction from the claim to the numbers: a second one would cost a round trip
    to begin it and the pool's rollback at the end, and psycopg forgets its prepared
    statements at every rollback.
    """
    rules = rules_for(settings)
    lease = settings.lease_seconds
    held = service.claim(
        session=session, user_id=user.id, lease_seconds=lease, now=now, leases_only=leases_only,
        commit=False,
    )  # fmt: skip
    item, prefetch = None, []
    if held.current is not None:
        loaded = service.get_for_review(session=session, task=held.current, next_task=held.next)
        if loaded is not None:
            item = presenters.item_view(loaded, settings=settings, rules=rules, now=now)
            prefetch = [f"/photos/{photo_id}" for photo_id in loaded.next_photo_ids]
    numbers = stats.inspector_numbers(
        session=session, user_id=user.id, now=now, timezone=settings.site_timezone
    )
    session.commit()
    return {
        "item": item,
        "prefetch": prefetch,
        "numbers": numbers,
        "tags": settings.tag_keys,
        "types": sorted(presenters.type_colours().items(), key=lambda kv: kv[1]),
        "severities": sorted(rules.vocabulary.severities, key=_severity_order),
        "verdicts": rules.verdicts,
        "duration": duration,
    }


def _severity_order(severity: str) -> int:
    return SEVERITY_RANK.get(severity, len(SEVERITY_RANK) + 1)


def _render_item(
    request: Request,
    session: Session,
    user: User,
    settings: Settings,
    *,
    notice: str | None = None,
    error: bool = False,
    undo: Decision | None = None,
    decision_pending: bool = False,
) -> Response:
    now = utcnow()
    keyboard = keyboard_for(user, settings.tag_keys)
    # A decision made but not committed yet commits with the claim of the next item.
    context = item_context(session, user, now, settings, leases_only=not decision_pending)
    context |= {
        "user": user,
        "keyboard": keyboard,
        "keys": keyboard.labels,
        "heartbeat_seconds": settings.heartbeat_seconds,
        "lease_seconds": settings.lease_seconds,
        "notice": notice,
        "notice_is_error": error,
        "undo": _undo_offer(undo, now, settings.undo_seconds),
    }
    return render(request, "review.html", context, block="item")


@router.get("/review", name="review")
def review(
    request: Request, session: SessionDep, user: ReviewerDep, settings: SettingsDep
) -> Response:
    """The user's item (the same one again on a reload while the lease lasts)."""
    notice = request.session.pop(NOTICE_SESSION_KEY, None)
    last = reopen.undoable(session=session, user_id=user.id, window_seconds=settings.undo_seconds)
    return _render_item(request, session, user, settings, notice=notice, undo=last)


@router.post("/review/{task_id}/decision", name="review_decision", responses=page(404))
def decision(
    request: Request,
    task_id: RowId,
    session: SessionDep,
    user: ReviewerDep,
    settings: SettingsDep,
    language: LanguageDep,
    t: TranslatorDep,
    verdict: Annotated[Literal["pass", "reject", "confirm"], Form()],
    note: Annotated[str, Form(max_length=MAX_NOTE)] = "",
    tags: Annotated[list[str] | None, Form()] = None,
    regions: Annotated[str, Form(max_length=MAX_EDITS_JSON)] = "",
    expects: Annotated[Literal["pass", "reject", ""], Form()] = "",
    unmarked: Annotated[bool, Form()] = False,
) -> Response:
    """Record the decision and answer with the next item, in place of the decided one.

    A decision that is refused leaves the item on screen as the inspector edited it: the
    answer is only the reason, swapped into the item's notice (nothing they did is lost).
    """
    notice, error, made = None, False, None
    htmx = is_htmx(request)
    try:
        made = decisions.decide(
            session=session,
            task_id=task_id,
            user_id=user.id,
            verdict=verdict,
            note=note,
            tags=tags or [],
            region_edits=edits.parse(regions),
            expects=expects or None,
            unmarked=unmarked,
            rules=rules_for(settings),
            # The next item is claimed in the same transaction: one wait for the disk.
            commit=not htmx,
        )
    except decisions.TaskNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except decisions.LeaseLost as exc:
        notice = t("review.lease_lost_decided") if exc.already_decided else t("review.lease_lost")
    except decisions.Refused as exc:  # the verdict differs from the button's, or no defect
        verdict_label = label(language, "verdict", exc.verdict)
        notice, error = t(f"review.decision_refused.{exc.code}", verdict=verdict_label), True
    except ValueError as exc:  # bad region edits, tags, or nothing to confirm
        notice, error = t("review.not_saved", reason=str(exc)), True
    if htmx and error:
        return _refusal(request, notice or "")
    if not htmx:
        # Without JavaScript: redirect, so a reload does not post the decision again.
        if notice:
            request.session[NOTICE_SESSION_KEY] = notice
        return RedirectResponse("/review", status_code=303)
    return _render_item(
        request, session, user, settings, notice=notice, error=error, undo=made,
        decision_pending=made is not None,
    )  # fmt: skip


def _refusal(request: Request, notice: str) -> Response:
    """The reason a decision was not saved, into the item still on screen."""
    headers = {"HX-Retarget": "#decision-notice", "HX-Reswap": "innerHTML"}
    context = {"message": notice}
    response = render(request, "review.html", context, block="refusal", fragment=True)
    response.headers.update(headers)
    return response


@router.post("/review/decisions/{decision_id}/undo", name="review_undo")
def undo(
    request: Request,
    decision_id: RowId,
    session: SessionDep,
    user: ReviewerDep,
    settings: SettingsDep,
    t: TranslatorDep,
) -> Response:
    """Take the decision back: its item returns to this user's screen."""
    notice = None
    try:
        reopen.undo(
            session=session,
            decision_id=decision_id,
            user_id=user.id,
            window_seconds=settings.undo_seconds,
            lease_seconds=settings.lease_seconds,
        )
    except decisions.Refused as exc:
        notice = t(f"review.undo_refused.{exc.code}")
    if not is_htmx(request):
        if notice:
            request.session[NOTICE_SESSION_KEY] = notice
        return RedirectResponse("/review", status_code=303)
    return _render_item(request, session, user, settings, notice=notice, error=notice is not None)


@router.post(
    "/review/heartbeat",
    name="review_heartbeat",
    status_code=204,
    responses={**NO_CONTENT, **page(409)},
)
def heartbeat(
    request: Request,
    session: SessionDep,
    user: ReviewerDep,
    settings: SettingsDep,
    t: TranslatorDep,
    task: Annotated[int | None, Form()] = None,
) -> Response:
    """Renew the user's leases; 409 with a notice when the item on screen is not theirs now."""
    held = service.renew_leases(
        session=session, user_id=user.id, lease_seconds=settings.lease_seconds
    )
    if task is None or task in held:
        return Response(status_code=204)
    context = {"message": t("review.lease_gone")}
    return render(
        request, "review.html", context, block="lease_lost", fragment=True, status_code=409
    )
