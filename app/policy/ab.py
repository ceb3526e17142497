"""The A/B analysis of champion vs challenger. Pure: counts in, a decision out.

What is compared is agreement with human decisions (reviewed and audited items) per arm,
with a two-sided two-proportion z-test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Arm:
    agreed: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.agreed / self.total if self.total else None


@dataclass(frozen=True)
class AbRules:
    alpha: float = 0.05
    min_samples_per_arm: int = 200
    duration_days: float = 7.0


@dataclass(frozen=True)
class AbAnalysis:
    decision: Literal["continue", "promote", "rollback"]
    reason: str
    z: float | None = None
    p_value: float | None = None
    difference: float | None = None  # challenger rate - champion rate


def two_proportion_z(a: Arm, b: Arm) -> tuple[float, float]:
    """z and two-sided p for H0: rate(a) == rate(b), with the pooled standard error."""
    if not a.total or not b.total:
        raise ValueError("both arms need at least one sample")
    pooled = (a.agreed + b.agreed) / (a.total + b.total)
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.total + 1 / b.total))
    diff = b.agreed / b.total - a.agreed / a.total
    if se == 0:
        return 0.0, 1.0  # both arms all-agree or all-disagree: no evidence either way
    z = diff / se
    p = math.erfc(abs(z) / math.sqrt(2))  # two-sided normal tail
    return z, p


def analyse(champion: Arm, challenger: Arm, days_running: float, rules: AbRules) -> AbAnalysis:
    """Continue until the duration is over or both arms have enough samples, then decide.

    Only a significantly better challenger is promoted; anything else at the end rolls
    it back, because a model that is not shown to be better is not worth the change.
    """
    enough = min(champion.total, challenger.total) >= rules.min_samples_per_arm
    if not enough and days_running < rules.duration_days:
        return AbAnalysis(
            "continue",
            f"{champion.total} / {challenger.total} samples (need {rules.min_samples_per_arm} "
            f"each) after {days_running:.1f} of {rules.duration_days:.0f} days",
        )
    if not champion.total or not challenger.total:
        return AbAnalysis("rollback", "the experiment ended with an arm that has no samples")
    z, p = two_proportion_z(champion, challenger)
    new, old = challenger.agreed / challenger.total, champion.agreed / champion.total
    diff = new - old
    summary = f"agreement {new:.1%} vs {old:.1%}, z={z:.2f}, p={p:.4f}"
    if p < rules.alpha and diff > 0:
        return AbAnalysis("promote", f"challenger better: {summary}", z, p, diff)
    return AbAnalysis("rollback", f"challenger not shown better: {summary}", z, p, diff)
