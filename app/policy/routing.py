"""The routing policy: which items the models decide and which go to an inspector.

Pure: plain values in, a Route out, no I/O. The rule: regions the detector scores below
0.25 are ignored; an item whose most confident region is at or above 0.95 is decided by
the decision table, one between 0.70 and 0.95 goes to an inspector, one below 0.70 passes
as a likely false alarm; a share of the automatic routes (2 %) goes to review as an audit;
and any failure goes to review. The numbers are defaults, taken from the site report this
product was modelled on; each site sets its own (LOUPE_DETECTOR_THRESHOLD, ..._HIGH, ...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Verdict = Literal["pass", "reject"]
RouteKind = Literal["auto_pass", "auto_reject", "review"]

SEVERITY_ORDER = ("minor", "moderate", "severe")
NOT_A_DEFECT = "normal"

# Default (severity -> verdict): minor passes, moderate and severe are rejected.
DEFAULT_SEVERITY_VERDICTS: dict[str, Verdict] = {
    "minor": "pass",
    "moderate": "reject",
    "severe": "reject",
}


@dataclass(frozen=True)
class DecisionTable:
    """(defect type, severity) -> verdict. Overrides per type, '*' for every severity."""

    by_severity: dict[str, Verdict] = field(default_factory=lambda: dict(DEFAULT_SEVERITY_VERDICTS))
    overrides: dict[str, dict[str, Verdict]] = field(default_factory=dict)

    def verdict(self, defect_type: str, severity: str) -> Verdict:
        override = self.overrides.get(defect_type, {})
        if severity in override:
            return override[severity]
        if "*" in override:
            return override["*"]
        if defect_type == NOT_A_DEFECT:
            return "pass"
        # An unknown severity is treated as the worst: never pass what we cannot read.
        return self.by_severity.get(severity, "reject")

    @classmethod
    def from_json(cls, overrides_json: str) -> DecisionTable:
        """Parse LOUPE_DECISION_OVERRIDES, e.g. '{"hole": {"*": "reject"}}'."""
        raw = json.loads(overrides_json or "{}")
        if not isinstance(raw, dict):
            raise ValueError("decision overrides must be a JSON object of defect type -> table")
        overrides: dict[str, dict[str, Verdict]] = {}
        for defect_type, table in raw.items():
            if not isinstance(table, dict):
                raise ValueError(f"decision override for {defect_type!r} must be an object")
            for severity, verdict in table.items():
                if verdict not in ("pass", "reject"):
                    raise ValueError(f"verdict for {defect_type}/{severity} must be pass or reject")
            overrides[str(defect_type)] = dict(table)
        return cls(overrides=overrides)


@dataclass(frozen=True)
class Thresholds:
    detector: float = 0.25
    high: float = 0.95
    low: float = 0.70
    audit_rate: float = 0.02


@dataclass(frozen=True)
class RegionScore:
    """What the policy needs to know about one region.

    `type_probability` is the classifier's probability of the region's final label after
    step 2 (models/exceptions.py). `failed` marks a region the models could not judge
    (a crop too small, output that is not a distribution).
    """

    detector_score: float
    type_probability: float
    defect_type: str
    severity: str
    failed: bool = False

    @property
    def confidence(self) -> float:
        return region_confidence(self.detector_score, self.type_probability)


class Scored(Protocol):
    """What the band needs of a region: RegionScore as the models score it, or a region as
    it was recorded (app.policy.thresholds replays history with other bands)."""

    @property
    def detector_score(self) -> float: ...
    @property
    def defect_type(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def failed(self) -> bool: ...
    @property
    def confidence(self) -> float: ...


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    # no_defect | confident | uncertain | likely_false_alarm | inference_unavailable
    # | model_error | cold_start
    reason: str
    confidence: float | None
    verdict: Verdict | None  # the automatic verdict; None while a human has to decide
    severity: str | None = None  # the worst severity among the defects that matter
    is_audit: bool = False


@dataclass(frozen=True)
class RoutingPolicy:
    """The site's whole routing policy: thresholds, audit rate and decision table. Built
    once from settings (app.config.Settings.routing) and passed whole, so that every
    place that routes, proposes or ranks reads the same numbers."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    table: DecisionTable = field(default_factory=DecisionTable)

    def route(
        self, regions: Sequence[Scored] | None, audit_draw: float, *, cold_start: bool = False
    ) -> Route:
        return route(regions, self.thresholds, self.table, audit_draw, cold_start=cold_start)


def region_confidence(detector_score: float, type_probability: float) -> float:
    """How sure the models are about one region: detector score x P(final label).

    The product treats the two as independent checks that must both be right: the box
    marks something real (detector) and it is what the label says (classifier). A
    geometric or arithmetic mean would let one confident model hide the other's doubt,
    and the point of the thresholds is that an automatic decision needs both to be sure.

    Step 2 enters through `type_probability`, which is the label's probability after
    the exception checks: for a kept defect P1(type) x prod(1 - P(exception)), so an
    exception the model half believes lowers the confidence and sends the region to a
    human; for a region an exception turned into "normal", P1(normal) plus the mass the
    exceptions took from the candidate. Severity does not enter: it picks the verdict,
    not how sure the models are.
    """
    if not (math.isfinite(detector_score) and math.isfinite(type_probability)):
        return 0.0  # never sure of a number that is not one; failed regions go to review
    return max(0.0, min(1.0, detector_score * type_probability))


def _worst_severity(regions: Sequence[Scored]) -> str | None:
    # A "normal" region has no defect to be severe about; its scored severity is evidence only.
    defects = [r for r in regions if r.defect_type != NOT_A_DEFECT]
    ranked = [r.severity for r in defects if r.severity in SEVERITY_ORDER]
    return max(ranked, key=SEVERITY_ORDER.index) if ranked else None


def route(
    regions: Sequence[Scored] | None,
    thresholds: Thresholds,
    table: DecisionTable,
    audit_draw: float,
    *,
    cold_start: bool = False,
) -> Route:
    """Route one item from all of its photos' regions.

    `regions` is None when inference failed, and a region that could not be judged makes
    a model error: either way the item goes to review, never to an automatic pass.
    `cold_start` (no detector yet, whole photos classified) sends every item to review, so
    that inspectors' boxes become the first training set. `audit_draw` is a number in
    [0, 1); below the audit rate an automatic route is also sent to review as an audit.
    """
    if regions is None:
        return Route("review", "inference_unavailable", None, None)
    found = [r for r in regions if r.detector_score >= thresholds.detector]
    if any(r.failed for r in found):
        return Route("review", "model_error", None, None, _worst_severity(found))
    if cold_start:
        confidence = max((r.confidence for r in found), default=None)
        return Route("review", "cold_start", confidence, None, _worst_severity(found))
    auto = _automatic_route(found, thresholds, table)
    if auto.kind != "review" and audit_draw < thresholds.audit_rate:
        return Route("review", auto.reason, auto.confidence, None, auto.severity, is_audit=True)
    return auto


def _automatic_route(found: Sequence[Scored], t: Thresholds, table: DecisionTable) -> Route:
    if not found:
        return Route("auto_pass", "no_defect", None, "pass")
    confidence = max(r.confidence for r in found)
    sure = [r for r in found if r.confidence >= t.high]
    unsure = [r for r in found if t.low <= r.confidence < t.high]
    # A confident reject decides the item whatever else is on it.
    rejects = [r for r in sure if table.verdict(r.defect_type, r.severity) == "reject"]
    if rejects:
        return Route("auto_reject", "confident", confidence, "reject", _worst_severity(rejects))
    # Otherwise any region in the uncertain band needs a human, even when another region
    # is confidently fine: a sure "minor stain" must not auto-pass a doubtful hole.
    if unsure:
        band = max(r.confidence for r in unsure)
        return Route("review", "uncertain", band, None, _worst_severity(unsure))
    if sure:
        return Route("auto_pass", "confident", confidence, "pass", _worst_severity(sure))
    return Route("auto_pass", "likely_false_alarm", confidence, "pass", None)
