"""Calibration you can see: for each classifier version that served in the week, how
often the inspectors agreed with its defect type at each level of its stated confidence
(a reliability diagram), and its expected calibration error.

The confidence is the probability the classifier gave its final label, as served (after
step 2, at the temperature it ran with: the "+T…" of the recorded prompt version). The
same answers are also shown at the temperature the registry now holds for the version,
re-scaled from the served distribution (tempering twice multiplies the temperatures), so
the ML team sees what a new calibration would change before it serves.

A judged region is one an inspector answered that the classifier labelled (a drawn box
has no model answer, a failed region no label). The error is models.training's, the
gate's own: the region-weighted gap between confidence and agreement in ten bins.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.inspections.tables import Inspection, Region
from app.registry.serving import registered_temperature
from app.registry.tables import ModelVersion
from app.review.tables import Decision, DecisionRegion
from models.calibration import temper
from models.training.evaluate_classifier import CALIBRATION_BINS, calibration_error

SERVED_TEMPERATURE = re.compile(r"\+T([0-9.eE+-]+)$")


def served_temperature(prompt_version: str | None) -> float:
    """The temperature a result was served at: "v3+T0.83" -> 0.83, "v3" -> 1."""
    match = SERVED_TEMPERATURE.search(prompt_version or "")
    try:
        value = float(match.group(1)) if match else 1.0
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


def reliability(
    pairs: Iterable[tuple[float, bool]], bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Equal-width confidence bins: how many answers, their mean confidence, and the share
    the inspectors agreed with (None for an empty bin)."""
    totals = [[0, 0.0, 0] for _ in range(bins)]  # count, confidence, agreed
    for probability, agreed in pairs:
        slot = totals[min(bins - 1, max(0, int(probability * bins)))]
        slot[0] += 1
        slot[1] += probability
        slot[2] += int(agreed)
    return [
        {"low": i / bins, "high": (i + 1) / bins, "count": n,
         "confidence": conf / n if n else None, "agreement": agreed / n if n else None}
        for i, (n, conf, agreed) in enumerate(totals)
    ]  # fmt: skip


def section(session: Session, decisions: Select[Any]) -> list[dict[str, Any]]:
    """One entry per classifier version, most answers first. `decisions` selects the
    week's decisions in effect (app.dashboard.report)."""
    rows = session.execute(
        decisions.add_columns(
            Inspection.classifier_version, Inspection.prompt_version, Region.defect_type,
            Region.evidence["type_probability"], Region.evidence["final_distribution"],
            DecisionRegion.defect_type,
        )
        .join(DecisionRegion, DecisionRegion.decision_id == Decision.id)
        .join(Region, Region.id == DecisionRegion.region_id)
        .join(Inspection, Inspection.id == Decision.inspection_id)
        .where(Region.evidence["error"].is_(None), Inspection.classifier_version.is_not(None))
    ).tuples()  # fmt: skip
    answers: dict[str, list[tuple[float, float, dict[str, float], bool, str]]] = defaultdict(list)
    for version, prompt, model_type, probability, distribution, human_type in rows:
        if not isinstance(probability, int | float):
            continue
        answers[version].append((
            float(probability), served_temperature(prompt),
            distribution if isinstance(distribution, dict) else {},
            model_type == human_type, model_type,
        ))  # fmt: skip
    registry = {
        mv.version: registered_temperature(mv)
        for mv in session.scalars(
            select(ModelVersion).where(
                ModelVersion.kind == "classifier", ModelVersion.version.in_(list(answers))
            )
        )
    }
    return [
        _version_entry(version, found, registry.get(version))
        for version, found in sorted(answers.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]


def _version_entry(
    version: str,
    found: list[tuple[float, float, dict[str, float], bool, str]],
    registry_t: float | None,
) -> dict[str, Any]:
    served = [(p, agreed) for p, _, _, agreed, _ in found]
    at_registry = served
    if registry_t is not None:
        at_registry = [
            (temper(dist, registry_t / t).get(label, p) if dist else p, agreed)
            for p, t, dist, agreed, label in found
        ]
    temperatures = sorted({t for _, t, _, _, _ in found})
    return {
        "classifier_version": version,
        "regions": len(found),
        "served_temperatures": temperatures,
        "registry_temperature": registry_t,
        "error_served": calibration_error(served),
        "error_at_registry": calibration_error(at_registry),
        "bins_served": reliability(served),
        "bins_at_registry": reliability(at_registry),
    }
