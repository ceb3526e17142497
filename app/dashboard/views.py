"""The weekly report as JSON and CSV, the ML team's dashboard, and a pattern's examples.

Thin: parse the week, read the report (stored if the week is closed and beat wrote it,
live otherwise), hand it to a presenter or an encoder.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any, Literal, get_args

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from app.auth.deps import MlDep
from app.dashboard import presenters
from app.dashboard.examples import pattern_examples
from app.dashboard.snapshots import report_for, report_options, reports_for
from app.dashboard.weeks import BadWeek, Week
from app.db import SessionDep, utcnow
from app.deps import LanguageDep, SettingsDep, TranslatorDep
from app.feedback.tables import KINDS
from app.i18n import label as label_in
from app.pages import render
from app.policy.patterns import Pattern
from app.policy.thresholds import FIELD_REPORT_BANDS, MIN_SUPPORT, frontier, grid, parse_bands
from app.spec import API, ROLE_PAGE, Responses, api, page
from app.thresholds.bands import settings_in_force
from app.thresholds.history import simulate as band_replay
from app.thresholds.history import with_band_in_force

router = APIRouter(tags=["dashboard"])
# The router serves the report API (JSON, CSV) and the dashboard pages (HTML).
REPORT_API = {**API, **api(403)}
CSV: Responses = {
    200: {
        "description": "The table as CSV.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
DASHBOARD_PAGE = {**ROLE_PAGE, **page(422)}

CsvTable = Literal["patterns", "per_class", "inspectors", "model_versions", "trend"]
# The report keys a table under another name than the one the CSV links use.
REPORT_KEYS = {"patterns": "top_error_patterns"}
MAX_LABEL = 50


def _week(text: str | None, now: datetime, timezone: str) -> Week:
    """The asked week, or the last closed one: what the team reads on Monday morning."""
    if not text:
        return Week.of(now, timezone).shifted(-1)
    try:
        week = Week.parse(text)
    except BadWeek as exc:
        raise HTTPException(422, str(exc)) from exc
    if week.bounds(timezone)[0] > now:
        raise HTTPException(422, f"{week} has not started yet")
    return week


@router.get("/api/v1/reports/weekly", name="weekly_report", responses=REPORT_API)
def weekly_json(
    session: SessionDep,
    user: MlDep,
    settings: SettingsDep,
    week: str | None = Query(None, max_length=20),
) -> JSONResponse:
    """The week's report (`week` like 2026-W47; the last closed week by default)."""
    now = utcnow()
    chosen = _week(week, now, settings.site_timezone)
    report = report_for(session=session, week=chosen, options=report_options(settings), now=now)
    return JSONResponse(report)


@router.get(
    "/api/v1/reports/weekly.csv",
    name="weekly_report_csv",
    response_class=Response,
    responses={**CSV, **REPORT_API},
)
def weekly_csv(
    session: SessionDep,
    user: MlDep,
    settings: SettingsDep,
    table: CsvTable,
    week: str | None = Query(None, max_length=20),
) -> Response:
    """One table of the report as CSV, for a spreadsheet."""
    now = utcnow()
    chosen = _week(week, now, settings.site_timezone)
    options = report_options(settings)
    if table == "trend":
        weeks = [chosen.shifted(-i) for i in range(settings.dashboard_weeks - 1, -1, -1)]
        reports = reports_for(session=session, weeks=weeks, options=options, now=now)
        rows = [_trend_row(str(w), reports[w]) for w in weeks]
    else:
        report = report_for(session=session, week=chosen, options=options, now=now)
        rows = [_flat(row) for row in report[REPORT_KEYS.get(table, table)]]
    filename = f"loupe-{chosen}-{table}.csv"
    return Response(
        _csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _trend_row(week: str, report: dict[str, Any]) -> dict[str, Any]:
    return {
        "week": week,
        "total_reviews": report["total_reviews"],
        "ai_human_agreement": report["ai_human_agreement"],
        "escape_rate": report["escape_rate"]["rate"],
        "automatic_share": report["routing_mix"]["automatic_share"],
        **report["error_breakdown"],
        "backlog": report["queue"]["backlog"],
    }


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """Nested values (a version's error counts) as columns of their own."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula is quoted (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@router.get("/dashboard", name="dashboard", response_class=HTMLResponse, responses=DASHBOARD_PAGE)
def dashboard(
    request: Request,
    session: SessionDep,
    user: MlDep,
    settings: SettingsDep,
    lang: LanguageDep,
    t: TranslatorDep,
    week: str | None = Query(None, max_length=20),
) -> Response:
    now = utcnow()
    chosen = _week(week, now, settings.site_timezone)

    def label(group: str, value: str | None) -> str:
        return label_in(lang, group, value)

    weeks = [chosen.shifted(-i) for i in range(settings.dashboard_weeks - 1, -1, -1)]
    reports = reports_for(session=session, weeks=weeks, options=report_options(settings), now=now)
    report, previous = reports[chosen], reports[weeks[-2]]
    current = Week.of(now, settings.site_timezone)
    context = {
        "user": user,
        "week": str(chosen),
        "report": report,
        "previous_week": str(chosen.shifted(-1)),
        "next_week": str(chosen.shifted(1)) if chosen < current else None,
        "this_week": str(current),
        "kpis": presenters.kpis(report, previous),
        "trends": presenters.trend_charts([str(w) for w in weeks], [reports[w] for w in weeks], t),
        "charts": presenters.week_charts(report, t, label),
        "reliability": presenters.reliability_charts(report, t),
        "percent": presenters.percent,
        "heading": lambda p: presenters.pattern_heading(
            p["type"], p["model_label"], p["human_label"], p["field"], p["tag"], t, label
        ),
        "csv_tables": get_args(CsvTable),
    }
    return render(request, "dashboard.html", context)


@router.get(
    "/dashboard/bands", name="dashboard_bands", response_class=HTMLResponse,
    responses=DASHBOARD_PAGE,
)  # fmt: skip
def bands_panel(
    request: Request,
    session: SessionDep,
    user: MlDep,
    settings: SettingsDep,
    week: str | None = Query(None, max_length=20),
) -> Response:
    """The week's items replayed under the band in force and the field report's bands,
    and the curve over a grid of bands (app.policy.thresholds). The dashboard loads it
    after the page: it reads every item of the week, which the report's aggregates do not."""
    now = utcnow()
    chosen = _week(week, now, settings.site_timezone)
    start, end = chosen.bounds(settings.site_timezone)
    routing = settings_in_force(settings).routing
    shown = with_band_in_force(routing, parse_bands(FIELD_REPORT_BANDS))
    history, estimates = band_replay(
        session, routing=routing, bands=[*shown, *(b for b in grid() if b not in shown)],
        since=start, until=min(end, now), min_support=MIN_SUPPORT,
    )  # fmt: skip
    context = {"user": user, "week": str(chosen), "history": history,
               "estimates": estimates[: len(shown)], "curve": frontier(estimates),
               "min_support": MIN_SUPPORT, "percent": presenters.percent}  # fmt: skip
    return render(request, "dashboard_bands.html", context, block="bands")


@router.get(
    "/dashboard/patterns",
    name="dashboard_patterns",
    response_class=HTMLResponse,
    responses=DASHBOARD_PAGE,
)
def pattern_page(
    request: Request,
    session: SessionDep,
    user: MlDep,
    settings: SettingsDep,
    lang: LanguageDep,
    t: TranslatorDep,
    kind: str,
    week: str | None = Query(None, max_length=20),
    model: str | None = Query(None, max_length=MAX_LABEL),
    human: str | None = Query(None, max_length=MAX_LABEL),
    field: Literal["type", "severity"] | None = None,
    tag: str | None = Query(None, max_length=MAX_LABEL),
) -> Response:
    """The examples behind one pattern of the week: crops with the model's box."""
    if kind not in KINDS:
        raise HTTPException(422, f"kind must be one of {', '.join(KINDS)}")
    now = utcnow()
    chosen = _week(week, now, settings.site_timezone)
    pattern = Pattern(kind, model or None, human or None, field, tag or None)
    examples = pattern_examples(
        session=session, week=chosen, timezone=settings.site_timezone, pattern=pattern
    )

    def label(group: str, value: str | None) -> str:
        return label_in(lang, group, value)

    context = {
        "user": user,
        "week": str(chosen),
        "pattern": pattern,
        "title": presenters.pattern_heading(
            pattern.kind, pattern.model_label, pattern.human_label, pattern.field, pattern.tag,
            t, label,
        ),  # fmt: skip
        "examples": list(zip(examples, [presenters.example_crop(e, t, label) for e in examples],
                             strict=True)),
    }  # fmt: skip
    return render(request, "dashboard_patterns.html", context)
