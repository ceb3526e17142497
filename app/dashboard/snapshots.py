"""Stored reports of closed weeks, and the report of any week: stored if closed, live if not.

A closed week's numbers can still move later (a lead sends an item back, an inspector
undoes a decision). The ML team compares weeks, so each closed week is written once, as
it was when it closed, and from then on read back instead of recomputed. Beat writes
them (workers/tasks/reports.py); a week nobody wrote yet is computed live and not stored
by a page view, so a GET never writes.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.config import Settings
from app.dashboard.report import ReportOptions, weekly_report
from app.dashboard.weeks import Week
from app.feedback.tables import WeeklyReport
from app.policy.patterns import ActionRule, parse_rules

DEFAULT_RULES = Path(__file__).resolve().parent / "pattern_actions.json"


@lru_cache(maxsize=4)
def _rules(path: Path) -> tuple[ActionRule, ...]:
    return tuple(parse_rules(path.read_text(encoding="utf-8")))


def report_options(settings: Settings) -> ReportOptions:
    return ReportOptions(
        timezone=settings.site_timezone,
        sla_seconds=settings.review_sla_seconds,
        rules=_rules(settings.pattern_actions_file or DEFAULT_RULES),
        top_patterns=settings.report_top_patterns,
    )


def report_for(
    *, session: Session, week: Week, options: ReportOptions, now: datetime
) -> dict[str, Any]:
    """The stored report of a closed week when there is one, else the live report."""
    stored = session.get(WeeklyReport, str(week))
    if stored is not None:
        return stored.report
    return weekly_report(session=session, week=week, options=options, now=now)


def reports_for(
    *, session: Session, weeks: list[Week], options: ReportOptions, now: datetime
) -> dict[Week, dict[str, Any]]:
    """Several weeks at once (the trend charts): one read for the stored ones."""
    names = [str(w) for w in weeks]
    stored = {
        row.week: row.report
        for row in session.scalars(select(WeeklyReport).where(WeeklyReport.week.in_(names)))
    }
    return {
        w: stored.get(str(w)) or weekly_report(session=session, week=w, options=options, now=now)
        for w in weeks
    }


def snapshot_closed_weeks(
    *, session: Session, options: ReportOptions, now: datetime, weeks_back: int
) -> list[str]:
    """Write the report of every closed week in the last `weeks_back` that has none yet.

    Idempotent: a week already written is left as it is (ON CONFLICT DO NOTHING also
    covers two beat runs racing). Returns the weeks written.
    """
    current = Week.of(now, options.timezone)
    candidates = [current.shifted(-i) for i in range(1, weeks_back + 1)]
    have = set(
        session.scalars(
            select(WeeklyReport.week).where(WeeklyReport.week.in_([str(w) for w in candidates]))
        )
    )
    written = []
    for week in sorted(candidates):
        if str(week) in have or not week.is_closed(now, options.timezone):
            continue
        report = weekly_report(session=session, week=week, options=options, now=now)
        session.execute(
            insert(WeeklyReport)
            .values(week=str(week), report=report, created_at=now)
            .on_conflict_do_nothing(index_elements=["week"])
        )
        written.append(str(week))
    session.commit()
    return written
