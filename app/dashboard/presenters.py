"""Reports into what the dashboard shows: KPI cards with their change, and the charts.

Pure: reports (plain dicts) and a translator in, values and SVG out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from markupsafe import Markup

from app.dashboard import charts
from app.dashboard.examples import Example

Translate = Callable[..., str]
Label = Callable[[str, str | None], str]


@dataclass(frozen=True)
class Kpi:
    key: str
    value: str
    change: str  # "+2.1 pp", "−12", or "" without a previous week
    # Whether the change is good news: None when unchanged or not comparable.
    better: bool | None


# (key, how to read it from a report, percent or count, is higher better?)
KPIS: tuple[tuple[str, Callable[[dict[str, Any]], float | None], bool, bool], ...] = (
    ("total_reviews", lambda r: r["total_reviews"], False, True),
    ("agreement", lambda r: r["ai_human_agreement"], True, True),
    ("escape_rate", lambda r: r["escape_rate"]["rate"], True, False),
    ("automatic_share", lambda r: r["routing_mix"]["automatic_share"], True, True),
    ("false_positive", lambda r: r["error_breakdown"]["false_positive"], False, False),
    ("false_negative", lambda r: r["error_breakdown"]["false_negative"], False, False),
    ("classification_error", lambda r: r["error_breakdown"]["classification_error"], False, False),
    ("backlog", lambda r: r["queue"]["backlog"], False, False),
)


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def kpis(report: dict[str, Any], previous: dict[str, Any] | None) -> list[Kpi]:
    """Each headline number with its change since the week before."""
    cards = []
    for key, read, is_share, higher_is_better in KPIS:
        value = read(report)
        before = read(previous) if previous else None
        shown = percent(value) if is_share else ("–" if value is None else f"{value:,}")
        change, better = "", None
        if value is not None and before is not None:
            delta = value - before
            change = f"{delta * 100:+.1f} pp" if is_share else f"{delta:+,}"
            change = change.replace("-", "−")
            if delta:
                better = (delta > 0) == higher_is_better
        cards.append(Kpi(key, shown, change, better))
    return cards


def trend_charts(
    weeks: Sequence[str], reports: Sequence[dict[str, Any]], t: Translate
) -> dict[str, Markup]:
    """The 12-week trends: rates on one chart, error counts and volume on another."""
    rates = [
        charts.Series(t("dashboard.kpi.agreement"), [r["ai_human_agreement"] for r in reports]),
        charts.Series(
            t("dashboard.kpi.automatic_share"),
            [r["routing_mix"]["automatic_share"] for r in reports],
        ),
        charts.Series(t("dashboard.kpi.escape_rate"), [r["escape_rate"]["rate"] for r in reports]),
    ]
    kinds = ("false_positive", "false_negative", "classification_error")
    errors = [
        charts.Series(t(f"dashboard.kpi.{k}"), [r["error_breakdown"][k] for r in reports])
        for k in kinds
    ] + [charts.Series(t("dashboard.kpi.total_reviews"), [r["total_reviews"] for r in reports])]
    empty = t("dashboard.no_data")
    return {
        "rates": charts.line_chart(
            weeks, rates, title=t("dashboard.trend_rates"), y_max=1.0, empty_text=empty
        ),
        "errors": charts.line_chart(
            weeks,
            errors,
            title=t("dashboard.trend_errors"),
            value_format="count",
            empty_text=empty,
        ),  # fmt: skip
    }


def week_charts(report: dict[str, Any], t: Translate, label: Label) -> dict[str, Markup]:
    """The week's own pictures: routing mix, confusion matrix, per-class bars."""
    empty = t("dashboard.no_data")
    mix = report["routing_mix"]
    # Automatic routes first, so the target marker reads against their cumulative share.
    order = ("auto_pass", "auto_reject", "audit", "review")
    parts = [(t(f"dashboard.route.{key}"), mix["shares"][key] or 0.0) for key in order]
    if not mix["total"]:
        parts = []
    targets = mix["targets"]
    confusion = report["confusion"]
    per_class = report["per_class"]

    def name(value: str) -> str:
        return t("dashboard.missed") if value == "missed" else label("defect", value)

    return {
        "routing": charts.stacked_share_bar(
            parts,
            title=t("dashboard.routing_mix"),
            targets=[(t("dashboard.target_automatic"), targets["automatic"])],
            empty_text=empty,
        ),
        "confusion": charts.confusion_matrix(
            [name(m) for m in confusion["model_labels"]],
            [name(h) for h in confusion["human_labels"]],
            confusion["counts"],
            title=t("dashboard.confusion"),
            row_axis=t("dashboard.axis_model"),
            col_axis=t("dashboard.axis_human"),
            empty_text=empty,
        ),
        "per_class": charts.bar_chart(
            [name(c["class"]) for c in per_class],
            [
                charts.Series(t("dashboard.precision"), [c["precision"] for c in per_class]),
                charts.Series(t("dashboard.recall"), [c["recall"] for c in per_class]),
            ],
            title=t("dashboard.per_class"),
            y_max=1.0,
            empty_text=empty,
        ),
    }


def example_crop(example: Example, t: Translate, label: Label) -> Markup | None:
    """The example's region on its photo, with the model's or the human's box."""
    if example.box is None or example.photo_id is None or not example.photo_width:
        return None
    missed = example.model_label is None
    kind: Literal["model", "human"] = "human" if missed else "model"
    shown = example.human_label if missed else example.model_label
    return charts.box_crop(
        f"/photos/{example.photo_id}",
        example.photo_width,
        example.photo_height or example.photo_width,
        [charts.BoxMark(example.box, label("defect", shown), kind)],
        focus=example.box,
        title=t("dashboard.example_title", model=label("defect", example.model_label) or "–",
                human=label("defect", example.human_label) or "–"),
    )  # fmt: skip


def pattern_heading(
    kind: str, model_label: str | None, human_label: str | None, field: str | None,
    tag: str | None, t: Translate, label: Label,
) -> str:  # fmt: skip
    """A pattern in the reader's language: "False positive · Stain → Normal · Shadow"."""
    parts = [label("error_kind", kind)]
    if field == "severity":
        parts.append(f"{label('defect', model_label)} ({t('dashboard.severity')})")
    else:
        missed = t("dashboard.missed")
        parts.append(f"{label('defect', model_label) if model_label else missed} → "
                     f"{label('defect', human_label)}")  # fmt: skip
    if tag:
        parts.append(label("tag", tag))
    return " · ".join(parts)


def reliability_charts(report: dict[str, Any], t: Translate) -> list[tuple[dict[str, Any], Markup]]:
    """A reliability diagram per classifier version: agreement per confidence bin as
    served, at the registry's temperature when it holds one, and the diagonal a calibrated
    model would follow. A report stored before the section existed has none."""
    drawn = []
    for entry in report.get("calibration") or []:
        served = entry["bins_served"]
        labels = [f"{round(b['low'] * 100)}–{round(b['high'] * 100)}" for b in served]
        series = [
            charts.Series(t("dashboard.calibration_ideal"),
                          [(b["low"] + b["high"]) / 2 for b in served]),
            charts.Series(t("dashboard.calibration_served"), [b["agreement"] for b in served]),
        ]  # fmt: skip
        if entry["registry_temperature"] is not None:
            series.append(
                charts.Series(
                    t(
                        "dashboard.calibration_at_registry",
                        t=f"{entry['registry_temperature']:.3g}",
                    ),
                    [b["agreement"] for b in entry["bins_at_registry"]],
                )
            )
        title = t("dashboard.calibration_chart", version=entry["classifier_version"])
        drawn.append((entry, charts.line_chart(labels, series, title=title, y_max=1.0,
                                                empty_text=t("dashboard.no_data"))))  # fmt: skip
    return drawn
