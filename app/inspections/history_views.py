"""/inspections: leads and the ML team search every inspection and open one's history page.

Thin: the queries are app.inspections.history; the photos and boxes are drawn as the review
page draws them (templates/_review.html, app.review.presenters).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse

from app.auth.deps import is_htmx, require_role
from app.auth.tables import User
from app.db import SessionDep
from app.deps import SettingsDep, TranslatorDep
from app.i18n import Translator
from app.inspections import history
from app.inspections.tables import Inspection
from app.pages import render
from app.review.presenters import PhotoView, region_view
from app.spec import ROLE_PAGE, page

router = APIRouter(tags=["history"], default_response_class=HTMLResponse, responses=ROLE_PAGE)

PATH = "/inspections"
# Leads answer for the floor's decisions, the ML team for the models': both read the record.
HistoryDep = Annotated[User, Depends(require_role("lead", "ml"))]
MAX_FILTER = 1000  # longer is no filter anyone typed; the limits people meet are history's


def _local(timezone: str) -> Callable[[datetime | None], str]:
    zone = ZoneInfo(timezone)

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else "–"

    return local


def _refused(
    request: Request, t: Translator, exc: history.BadFilter, context: dict[str, Any]
) -> Response:
    """400 with the form as it was sent and what is wrong with it. htmx swaps no error
    response, so an HTMX request is sent to the same address as a whole page."""
    message = t(f"history.bad.{exc.code}", field=t(f"history.field.{exc.field}"), **exc.params)
    context |= {"error": {"field": exc.field, "message": message}, "results": None}
    query = request.url.query
    headers = {"HX-Redirect": PATH + (f"?{query}" if query else "")} if is_htmx(request) else None
    return render(request, "inspections.html", context, block="results", status_code=400,
                  headers=headers)  # fmt: skip


@router.get(PATH, name="inspections")
def inspections(
    request: Request,
    session: SessionDep,
    user: HistoryDep,
    settings: SettingsDep,
    t: TranslatorDep,
    external_id: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    station: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    route: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    verdict: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    date_from: Annotated[str | None, Query(alias="from", max_length=MAX_FILTER)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=MAX_FILTER)] = None,
    after: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    limit: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
) -> Response:
    """Inspections newest first, filtered; HTMX gets the results block alone."""
    typed = {"external_id": external_id, "station": station, "route": route,
             "verdict": verdict, "from": date_from, "to": date_to}  # fmt: skip
    context: dict[str, Any] = {
        "user": user,
        "form": {name: (value or "").strip() for name, value in typed.items()},
        "routes": history.ROUTE_FILTERS,
        "verdicts": history.VERDICT_FILTERS,
        "timezone": settings.site_timezone,
        "local": _local(settings.site_timezone),
        "error": None,
    }
    try:
        filters = history.parse_filters(
            external_id=external_id, station=station, route=route, verdict=verdict,
            date_from=date_from, date_to=date_to,
        )  # fmt: skip
        size = history.parse_limit(limit)
        position = history.parse_cursor(after)
    except history.BadFilter as exc:
        return _refused(request, t, exc, context)
    found = history.search(session=session, filters=filters, after=position, limit=size,
                           timezone=settings.site_timezone)  # fmt: skip
    sized = {"limit": str(size)} if size != history.DEFAULT_LIMIT else {}
    query = {**filters.query(), **sized}
    context |= {
        "results": found,
        "first_page": _address(query) if position else None,
        "next_page": _address({**query, "after": found.next}) if found.next else None,
    }
    # The address htmx puts in the bar: the filters in use, not every empty field of the form.
    pushed = {"HX-Push-Url": _address({**query, **({"after": after} if after else {})})}
    return render(request, "inspections.html", context, block="results",
                  headers=pushed if is_htmx(request) else None)  # fmt: skip


def _address(query: dict[str, str]) -> str:
    return f"{PATH}?{urlencode(query)}" if query else PATH


def photo_views(inspection: Inspection) -> list[PhotoView]:
    """The photos with their regions numbered across them, as the review page numbers them."""
    views, number = [], 0
    for photo in inspection.photos:
        regions = []
        for region in (r for r in inspection.regions if r.photo_id == photo.id):
            number += 1
            regions.append(region_view(number, region, show_confidence=True))
        views.append(PhotoView(photo, regions))
    return views


@router.get(PATH + "/{inspection_id}", name="inspection", responses=page(404))
def inspection(
    request: Request,
    inspection_id: uuid.UUID,
    session: SessionDep,
    user: HistoryDep,
    settings: SettingsDep,
) -> Response:
    """One inspection's record: photos, boxes, the models' answers, route and every decision."""
    found = history.record(session=session, inspection_id=inspection_id)
    if found is None:
        raise HTTPException(404, f"no inspection {inspection_id}")
    photos = photo_views(found.inspection)
    context = {
        "user": user,
        "record": found,
        "item": found.inspection,
        "reference": found.inspection.external_id or found.inspection.id.hex[:8],
        "photos": photos,
        "region_numbers": {r.region.id: r.number for p in photos for r in p.regions},
        "photo_numbers": {p.photo.id: n for n, p in enumerate(photos, start=1)},
        "timezone": settings.site_timezone,
        "local": _local(settings.site_timezone),
    }
    return render(request, "inspection.html", context)
