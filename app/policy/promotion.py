"""The evaluation gate: may a candidate model serve at all? Pure: metrics in, verdict out.

Defaults from the field report: detector mAP50 >= 0.85 and precision >= 0.80, and no
metric more than 0.02 worse than the champion's (the regression check).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GateRules:
    minimums: dict[str, float] = field(default_factory=lambda: {"map50": 0.85, "precision": 0.80})
    max_regression: float = 0.02
    # Metrics compared against the champion; higher is better for every one of them.
    compared: tuple[str, ...] = ("map50", "map50_95", "precision", "recall")


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]  # one line per check, passed or failed, with its numbers


def gate(
    candidate: dict[str, float], champion: dict[str, float] | None, rules: GateRules
) -> GateResult:
    """Check the pass criteria and the regression check; every check is reported."""
    reasons = []
    passed = True
    for name, minimum in rules.minimums.items():
        value = candidate.get(name)
        ok = value is not None and value >= minimum
        passed &= ok
        shown = "missing" if value is None else f"{value:.4f}"
        reasons.append(f"{'pass' if ok else 'FAIL'}: {name} {shown} (minimum {minimum:.2f})")
    for name in rules.compared:
        new = candidate.get(name)
        old = champion.get(name) if champion else None
        if new is None or old is None:
            continue  # no champion yet (first model), or a metric it never had
        ok = new >= old - rules.max_regression
        passed &= ok
        reasons.append(
            f"{'pass' if ok else 'FAIL'}: {name} {new:.4f} vs champion {old:.4f} "
            f"(at most {rules.max_regression:.2f} worse)"
        )
    return GateResult(passed, reasons)
