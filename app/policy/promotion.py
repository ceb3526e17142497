"""The evaluation gate: may a candidate model serve at all? Pure: metrics in, verdict out.

Defaults from the field report: detector mAP50 >= 0.85 and precision >= 0.80, and no
metric more than 0.02 worse than the champion's (the regression check). A classifier is
also held to a ceiling on false positives per 1,000 normal crops (the instruction-tuning
seed's measure), where lower is better. Every reason is a Problem, so a page can say it
in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.policy.problems import Problem, codes


@dataclass(frozen=True)
class GateRules:
    minimums: dict[str, float] = field(default_factory=lambda: {"map50": 0.85, "precision": 0.80})
    max_regression: float = 0.02
    # Metrics compared against the champion; higher is better for every one of them.
    compared: tuple[str, ...] = ("map50", "map50_95", "precision", "recall")
    # Metrics where lower is better: a ceiling each, and how much worse than the
    # champion's they may be (in the metric's own unit).
    maximums: dict[str, float] = field(default_factory=dict)
    compared_lower: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]  # one line per check, passed or failed, with its numbers

    def as_dict(self) -> dict[str, object]:
        """As a run and a version store it: the reasons in English, and their codes."""
        return {"passed": self.passed, "reasons": list(self.reasons), "codes": codes(self.reasons)}


def gate(
    candidate: dict[str, float], champion: dict[str, float] | None, rules: GateRules
) -> GateResult:
    """Check the pass criteria and the regression check; every check is reported."""
    reasons: list[str] = []
    for name, minimum in rules.minimums.items():
        value = candidate.get(name)
        ok = value is not None and value >= minimum
        reasons.append(_limit(ok, name, value, minimum, "minimum"))
    for name, maximum in rules.maximums.items():
        value = candidate.get(name)
        ok = value is not None and value <= maximum
        reasons.append(_limit(ok, name, value, maximum, "maximum"))
    allowances = {name: rules.max_regression for name in rules.compared}
    for name, allowance in (allowances | rules.compared_lower).items():
        new = candidate.get(name)
        old = champion.get(name) if champion else None
        if new is None or old is None:
            continue  # no champion yet (first model), or a metric it never had
        lower = name in rules.compared_lower
        ok = new <= old + allowance if lower else new >= old - allowance
        key = f"gate.{'higher' if lower else 'regression'}.{'pass' if ok else 'fail'}"
        reasons.append(Problem(
            f"{'pass' if ok else 'FAIL'}: {name} {new:.4f} vs champion {old:.4f} (at most "
            f"{allowance:.2f} {'higher' if lower else 'worse'})",
            key, name=name, value=f"{new:.4f}", champion=f"{old:.4f}",
            allowance=f"{allowance:.2f}",
        ))  # fmt: skip
    return GateResult(all(r.startswith("pass") for r in reasons), reasons)


def _limit(ok: bool, name: str, value: float | None, limit: float, which: str) -> Problem:
    shown = "missing" if value is None else f"{value:.4f}"
    key = f"gate.{which}.{'pass' if ok else 'fail'}" if value is not None else "gate.missing"
    return Problem(
        f"{'pass' if ok else 'FAIL'}: {name} {shown} ({which} {limit:.2f})",
        key, name=name, value=shown, limit=f"{limit:.2f}",
    )  # fmt: skip
