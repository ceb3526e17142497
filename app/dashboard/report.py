"""The weekly report: the field report's numbers and more, aggregated in SQL for one week.

Every number counts only the decision in effect for its item (`review_task.decision_id`):
an undone or superseded decision drops out without anything being deleted. A week is
[Monday 00:00, next Monday 00:00) in the site's time zone. Each query reads one week
through an index on its timestamp, so the cost follows the week's volume, not the table's
(bench/dashboard_report.py measures it at a year of data).

The report is a plain JSON-ready dict: the API returns it as is, beat stores closed weeks
as they were (app.dashboard.snapshots), and the dashboard page draws it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal_column, select, text
from sqlalchemy.orm import Session

from app.auth.tables import User
from app.dashboard import calibration, reference
from app.dashboard.weeks import Week
from app.feedback.tables import KINDS, ErrorCase
from app.inspections.tables import Inspection, Region
from app.policy import metrics
from app.policy.patterns import ActionRule, Pattern, suggest_action
from app.review.tables import Decision, DecisionRegion, ReviewTask

# The field report's split: 70 % decided automatically, 24 % by people.
ROUTING_TARGETS = {"automatic": 0.70, "human": 0.24}
MISSED = "missed"  # the model side of a box only the human drew
NOT_JUDGED = "unknown"  # a region the classifier failed on: not a model judgement
REPORT_VERSION = 1


@dataclass(frozen=True)
class ReportOptions:
    timezone: str
    sla_seconds: int
    rules: Sequence[ActionRule]
    top_patterns: int = 10


def weekly_report(
    *, session: Session, week: Week, options: ReportOptions, now: datetime
) -> dict[str, Any]:
    """The report of `week` from the data as it is now."""
    start, end = week.bounds(options.timezone)
    _plan_for_one_week(session)
    totals = _decision_totals(session, start, end)
    confusion = _confusion(session, start, end)
    return {
        "version": REPORT_VERSION,
        "week": str(week),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "closed": end <= now,
        "generated_at": now.isoformat(),
        "total_reviews": totals["reviews"],
        "audited_reviews": totals["audits"],
        "ai_human_agreement": _share(totals["agreed"], totals["with_model"]),
        **_errors(session, start, end),
        "top_error_patterns": _patterns(session, start, end, options),
        "per_class": _per_class(confusion),
        "confusion": _confusion_matrix(confusion),
        "routing_mix": _routing_mix(session, start, end),
        "escape_rate": _escape_rate(totals),
        "queue": _queue(session, start, min(end, now), totals, options.sla_seconds),
        "inspectors": _inspectors(session, start, end),
        "model_versions": _versions(session, start, end),
        "reference": reference.section(session, start, end),
        "calibration": calibration.section(session, _decisions_in_effect(start, end)),
    }


def _plan_for_one_week(session: Session) -> None:
    """Planner settings for this transaction only, measured at a year of data.

    A week is ~2 % of the decisions. With the default random_page_cost (4, for spinning
    disks) PostgreSQL prefers hashing all of review_task and decision_region to 20,000
    index lookups, and a parallel scan on a 2-core machine: 440 ms instead of ~200 ms
    (bench/dashboard_report.py).
    """
    session.execute(text("SET LOCAL random_page_cost = 1.1"))
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _in_week(timestamp: Any, start: datetime, end: datetime) -> Any:
    return and_(timestamp >= start, timestamp < end)


def _decisions_in_effect(start: datetime, end: datetime) -> Any:
    """FROM decision JOIN review_task on the decision in effect, for decisions in the week.

    People's decisions only: an imported label (no user, app.imports) is no review, and no
    model ran on it, so it is no agreement or confusion either.
    """
    return (
        select()
        .select_from(Decision)
        .join(ReviewTask, ReviewTask.decision_id == Decision.id)
        .where(_in_week(Decision.created_at, start, end), Decision.user_id.is_not(None))
    )


def _decision_totals(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    d = Decision
    first = d.supersedes_id.is_(None)  # waiting time is measured on the first decision
    wait = func.extract("epoch", d.created_at - ReviewTask.created_at)
    audit_with_model = and_(d.is_audit, d.model_verdict.is_not(None))
    row = session.execute(
        _decisions_in_effect(start, end).add_columns(
            func.count().label("reviews"),
            func.count().filter(d.is_audit).label("audits"),
            func.count().filter(d.model_verdict.is_not(None)).label("with_model"),
            func.count().filter(d.model_verdict == d.verdict).label("agreed"),
            func.count().filter(audit_with_model).label("audits_with_model"),
            func.count()
            .filter(audit_with_model, d.model_verdict == "pass", d.verdict == "reject")
            .label("passed_defects"),
            func.count()
            .filter(audit_with_model, d.model_verdict == "reject", d.verdict == "pass")
            .label("wrong_rejects"),
            func.percentile_cont(0.5).within_group(wait).filter(first).label("wait_p50"),
            func.percentile_cont(0.95).within_group(wait).filter(first).label("wait_p95"),
            func.count().filter(first, d.created_at > ReviewTask.due_at).label("late"),
        )  # fmt: skip
    ).one()
    return dict(row._mapping)


def _errors(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """Region errors (what the detector and classifier got wrong) and item errors (verdicts
    the human reversed), counted apart: one wrong region often also flips the item."""
    rows = session.execute(
        select(ErrorCase.scope, ErrorCase.kind, func.count())
        .join(ReviewTask, ReviewTask.decision_id == ErrorCase.decision_id)
        .where(_in_week(ErrorCase.decided_at, start, end))
        .group_by(ErrorCase.scope, ErrorCase.kind)
    ).all()
    counts = {(scope, kind): n for scope, kind, n in rows}
    return {
        "error_breakdown": {kind: counts.get(("region", kind), 0) for kind in KINDS},
        "item_errors": {
            kind: counts.get(("item", kind), 0) for kind in ("false_positive", "false_negative")
        },
    }


def _patterns(
    session: Session, start: datetime, end: datetime, options: ReportOptions
) -> list[dict[str, Any]]:
    """The most frequent (kind, model label, human label, field, tag) groups of region cases.

    A case with two tags belongs to both tags' patterns; a case without one to the
    pattern without a tag.
    """
    tag = func.unnest(func.coalesce(func.nullif(ErrorCase.tags, literal_column("'{}'")),
                                    literal_column("ARRAY[NULL]::varchar[]")))  # fmt: skip
    tagged = (
        select(
            ErrorCase.kind,
            ErrorCase.model_label,
            ErrorCase.human_label,
            ErrorCase.field,
            tag.label("tag"),
        )  # fmt: skip
        .join(ReviewTask, ReviewTask.decision_id == ErrorCase.decision_id)
        .where(_in_week(ErrorCase.decided_at, start, end), ErrorCase.scope == "region")
        .subquery()
    )
    keys = [tagged.c.kind, tagged.c.model_label, tagged.c.human_label, tagged.c.field, tagged.c.tag]
    count = func.count().label("count")
    rows = session.execute(
        select(
            tagged.c.kind,
            tagged.c.model_label,
            tagged.c.human_label,
            tagged.c.field,
            tagged.c.tag,
            count,
        )
        .group_by(*keys)
        .order_by(count.desc(), *[k.asc().nulls_first() for k in keys])
        .limit(options.top_patterns)
    ).all()
    patterns = []
    for kind, model_label, human_label, field, tag_value, n in rows:
        pattern = Pattern(kind, model_label, human_label, field, tag_value)
        patterns.append(
            {
                "pattern": pattern.title(),
                "type": kind,
                "model_label": model_label,
                "human_label": human_label,
                "field": field,
                "tag": tag_value,
                "count": n,
                "action": suggest_action(pattern, options.rules),
            }
        )
    return patterns


def _confusion(session: Session, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
    """(model type, human type) → judged regions, from every answer in the week.

    The model side is MISSED for a box only the human drew; "normal" on the human side
    means "not a defect".
    """
    model = func.coalesce(Region.defect_type, MISSED)
    rows = session.execute(
        _decisions_in_effect(start, end)
        .add_columns(model, DecisionRegion.defect_type, func.count())
        .join(DecisionRegion, DecisionRegion.decision_id == Decision.id)
        .outerjoin(Region, Region.id == DecisionRegion.region_id)
        .where(func.coalesce(Region.defect_type, "") != NOT_JUDGED)
        .group_by(model, DecisionRegion.defect_type)
    ).all()
    return {(m, h): n for m, h, n in rows}


def _per_class(confusion: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    pairs: dict[tuple[str | None, str | None], int] = {
        (None if m == MISSED else m, h): n for (m, h), n in confusion.items()
    }
    counts = metrics.per_class_from_matrix(pairs)
    return [
        {
            "class": name,
            "true_positive": c.true_positive,
            "false_positive": c.false_positive,
            "false_negative": c.false_negative,
            "precision": c.precision,
            "recall": c.recall,
        }
        for name, c in counts.items()
    ]


def _confusion_matrix(confusion: dict[tuple[str, str], int]) -> dict[str, Any]:
    model_labels = sorted({m for m, _ in confusion}, key=lambda x: (x == MISSED, x))
    human_labels = sorted({h for _, h in confusion}, key=lambda x: (x == "normal", x))
    counts = [[confusion.get((m, h), 0) for h in human_labels] for m in model_labels]
    return {"model_labels": model_labels, "human_labels": human_labels, "counts": counts}


def _routing_mix(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """How items were routed. An audit was decided automatically and then sampled for a
    human check, so it counts as automatic."""
    rows = session.execute(
        select(Inspection.route, Inspection.is_audit, func.count())
        .where(_in_week(Inspection.routed_at, start, end))
        .group_by(Inspection.route, Inspection.is_audit)
    ).all()
    counts = {"auto_pass": 0, "auto_reject": 0, "review": 0, "audit": 0}
    for route, is_audit, n in rows:
        assert route is not None  # set with routed_at (app.inspections.results)
        counts["audit" if is_audit else route] += n
    total = sum(counts.values())
    automatic = counts["auto_pass"] + counts["auto_reject"] + counts["audit"]
    return {
        "total": total,
        "counts": counts,
        "shares": {k: _share(v, total) for k, v in counts.items()},
        "automatic_share": _share(automatic, total),
        "human_share": _share(counts["review"], total),
        "targets": ROUTING_TARGETS,
    }


def _escape_rate(totals: dict[str, Any]) -> dict[str, Any]:
    """How often an automatic decision was wrong, from the audits: the only unbiased
    sample of automatic routes (items that went to review were picked for being unsure)."""
    audits = totals["audits_with_model"]
    wrong = totals["passed_defects"] + totals["wrong_rejects"]
    interval = metrics.wilson_interval(wrong, audits)
    return {
        "audits": audits,
        "wrong": wrong,
        "passed_defects": totals["passed_defects"],
        "wrong_rejects": totals["wrong_rejects"],
        "rate": _share(wrong, audits),
        "ci95": list(interval) if interval else None,
    }


def _queue(
    session: Session, start: datetime, until: datetime, totals: dict[str, Any], sla_seconds: int
) -> dict[str, Any]:
    """Backlog at the week's end (or now, for the current week) and waiting times."""
    t = ReviewTask
    open_then = and_(t.created_at < until, (t.decided_at.is_(None)) | (t.decided_at >= until))
    backlog, overdue = session.execute(
        select(func.count(), func.count().filter(t.due_at < until)).where(open_then)
    ).one()
    return {
        "at": until.isoformat(),
        "backlog": backlog,
        "open_past_due": overdue,
        "wait_median_s": totals["wait_p50"],
        "wait_p95_s": totals["wait_p95"],
        "decided_late": totals["late"],
        "sla_seconds": sla_seconds,
    }


def _inspectors(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    d = Decision
    hours = func.count(func.distinct(func.date_trunc("hour", d.created_at)))
    audited = and_(d.is_audit, d.model_verdict.is_not(None))
    rows = session.execute(
        _decisions_in_effect(start, end)
        .add_columns(
            User.username,
            func.count(),
            hours,
            func.count().filter(audited),
            func.count().filter(audited, d.verdict == d.model_verdict),
        )
        .join(User, User.id == d.user_id)
        .group_by(User.username)
        .order_by(func.count().desc(), User.username)
    ).all()
    return [
        {
            "user": name,
            "decisions": n,
            "active_hours": active,
            "per_active_hour": n / active if active else None,
            "audits": audits,
            "audit_agreement": _share(agreed, audits),
        }
        for name, n, active, audits, agreed in rows
    ]


VERSION_KEYS = ("detector_version", "classifier_version", "prompt_version")


def _versions(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Routing, agreement and errors for each combination of model versions that served."""
    table: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {
            "inspections": 0,
            "automatic": 0,
            "reviews": 0,
            "with_model": 0,
            "agreed": 0,
            "errors": dict.fromkeys(KINDS, 0),
        }  # fmt: skip
    )
    automatic = (Inspection.route != "review") | Inspection.is_audit
    for *key, n, auto in session.execute(
        select(
            *(getattr(Inspection, k) for k in VERSION_KEYS),
            func.count(),
            func.count().filter(automatic),
        )  # fmt: skip
        .where(_in_week(Inspection.routed_at, start, end))
        .group_by(*(getattr(Inspection, k) for k in VERSION_KEYS))
    ):
        table[tuple(key)].update(inspections=n, automatic=auto)
    d = Decision
    for *key, n, with_model, agreed in session.execute(
        _decisions_in_effect(start, end)
        .add_columns(
            *(getattr(d, k) for k in VERSION_KEYS),
            func.count(),
            func.count().filter(d.model_verdict.is_not(None)),
            func.count().filter(d.model_verdict == d.verdict),
        )  # fmt: skip
        .group_by(*(getattr(d, k) for k in VERSION_KEYS))
    ):
        table[tuple(key)].update(reviews=n, with_model=with_model, agreed=agreed)
    for *key, kind, n in session.execute(
        select(*(getattr(ErrorCase, k) for k in VERSION_KEYS), ErrorCase.kind, func.count())
        .join(ReviewTask, ReviewTask.decision_id == ErrorCase.decision_id)
        .where(_in_week(ErrorCase.decided_at, start, end), ErrorCase.scope == "region")
        .group_by(*(getattr(ErrorCase, k) for k in VERSION_KEYS), ErrorCase.kind)
    ):
        table[tuple(key)]["errors"][kind] = n
    return [
        {
            **dict(zip(VERSION_KEYS, key, strict=True)),
            "inspections": v["inspections"],
            "automatic_share": _share(v["automatic"], v["inspections"]),
            "reviews": v["reviews"],
            "agreement": _share(v["agreed"], v["with_model"]),
            "errors": v["errors"],
        }
        for key, v in sorted(table.items(), key=lambda kv: -kv[1]["inspections"] - kv[1]["reviews"])
    ]
