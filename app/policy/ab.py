"""The A/B analysis of champion vs challenger. Pure: counts in, a decision out.

What is compared is agreement with the inspectors per arm, on what the challenger
changes. A new classifier or prompt: the item verdicts it proposed on reviewed and audited
items, with a two-sided two-proportion z-test (`analyse`). A new detector: its boxes,
each region people kept as a defect agreeing, each one they called not a defect and each
defect they had to draw disagreeing (`analyse_estimates`). A detector mostly changes
*which* items people see (a good one leaves the clean garments to the automatic pass), so
its reviewed items are not a fair sample; the audits of its automatic passes are weighed
up by 1 / the audit rate to stand for the items nobody saw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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
    # The site's audit rate: an audited item stands for 1 / audit_rate automatic ones.
    audit_rate: float = 0.02


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
    waiting = _waiting(champion.total, challenger.total, days_running, rules)
    if waiting is not None:
        return waiting
    z, p = two_proportion_z(champion, challenger)
    new, old = challenger.agreed / challenger.total, champion.agreed / champion.total
    return _decide("agreement", new, old, z, p, rules)


@dataclass(frozen=True)
class ItemEvidence:
    """One item an inspector decided in an arm: of the `total` things they judged on it,
    `agreed` the models had right. `weight` is 1 / the chance the item was shown to a
    person: 1 inside the review band, 1 / the audit rate for an audited automatic item."""

    agreed: int
    total: int
    weight: float = 1.0


@dataclass(frozen=True)
class Estimate:
    """An arm's agreement as a ratio over its items, sum(w * agreed) / sum(w * total),
    with the ratio's variance linearised over items: the regions of one photo are not
    independent draws, the items are."""

    agreed: float
    total: float
    items: int  # decided items behind it, those with nothing to judge included
    variance: float

    @property
    def rate(self) -> float | None:
        return self.agreed / self.total if self.total else None


def estimate(evidence: Iterable[ItemEvidence]) -> Estimate:
    evidence = list(evidence)
    agreed = sum(e.weight * e.agreed for e in evidence)
    total = sum(e.weight * e.total for e in evidence)
    if not total:
        return Estimate(agreed, total, len(evidence), 0.0)
    rate = agreed / total
    spread = sum((e.weight * (e.agreed - rate * e.total)) ** 2 for e in evidence)
    return Estimate(agreed, total, len(evidence), spread / total**2)


def analyse_estimates(
    champion: Estimate, challenger: Estimate, days_running: float, rules: AbRules, *,
    measure: str,
) -> AbAnalysis:  # fmt: skip
    """`analyse` for weighted estimates (a detector's regions, audits weighed up): the
    same waiting and the same rule, with an unpooled z on the two ratios."""
    waiting = _waiting(champion.items, challenger.items, days_running, rules)
    if waiting is not None:
        return waiting
    new, old = challenger.rate, champion.rate
    if new is None or old is None:
        return AbAnalysis("rollback", f"the experiment ended with an arm without {measure}")
    se = math.sqrt(champion.variance + challenger.variance)
    # No spread at all (both arms all right or all wrong): no evidence either way.
    z = (new - old) / se if se else 0.0
    p = math.erfc(abs(z) / math.sqrt(2)) if se else 1.0
    return _decide(measure, new, old, z, p, rules)


def _waiting(
    champion: int, challenger: int, days_running: float, rules: AbRules
) -> AbAnalysis | None:
    enough = min(champion, challenger) >= rules.min_samples_per_arm
    if not enough and days_running < rules.duration_days:
        return AbAnalysis(
            "continue",
            f"{champion} / {challenger} samples (need {rules.min_samples_per_arm} "
            f"each) after {days_running:.1f} of {rules.duration_days:.0f} days",
        )
    if not champion or not challenger:
        return AbAnalysis("rollback", "the experiment ended with an arm that has no samples")
    return None


def _decide(measure: str, new: float, old: float, z: float, p: float, rules: AbRules) -> AbAnalysis:
    diff = new - old
    summary = f"{measure} {new:.1%} vs {old:.1%}, z={z:.2f}, p={p:.4f}"
    if p < rules.alpha and diff > 0:
        return AbAnalysis("promote", f"challenger better: {summary}", z, p, diff)
    return AbAnalysis("rollback", f"challenger not shown better: {summary}", z, p, diff)
