"""The A/B analysis of champion vs challenger. Pure: counts in, a decision out.

What is compared is agreement with the inspectors per arm, on what the challenger
changes, over the items people decided (reviewed and audited). A new classifier or prompt:
the item verdict it proposed, one unit per item. A new detector: its boxes, each region
people kept as a defect agreeing, each one they called not a defect and each defect they
had to draw disagreeing. Either way a model changes *which* items people see (a good
detector leaves the clean garments to the automatic pass), so the reviewed items are not a
fair sample of an arm: the audits of its automatic decisions are weighed up by 1 / the
audit rate to stand for the items nobody saw, and the arms' ratios are compared with a
two-sided z-test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


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
    """An arm's agreement as a ratio over its items, sum(w * agreed) / sum(w * total).

    Its variance is linearised over items (the regions of one photo are not independent
    draws; the items are), from the weighted sums of squares kept here, so that it can be
    taken around the two arms' pooled rate: with one unit per item and no weights, the test
    is the pooled two-proportion z-test.
    """

    agreed: float
    total: float
    items: int  # decided items behind it, those with nothing to judge included
    squares: tuple[float, float, float] = (0.0, 0.0, 0.0)  # sum w^2 a^2, w^2 a n, w^2 n^2

    @property
    def rate(self) -> float | None:
        return self.agreed / self.total if self.total else None

    def variance(self, around: float) -> float:
        """Var of the ratio: sum(w^2 (a - around * n)^2) / (sum w n)^2."""
        if not self.total:
            return 0.0
        aa, an, nn = self.squares
        return max(0.0, aa - 2 * around * an + around**2 * nn) / self.total**2


def estimate(evidence: Iterable[ItemEvidence]) -> Estimate:
    evidence = list(evidence)
    squares = (
        sum((e.weight * e.agreed) ** 2 for e in evidence),
        sum(e.weight**2 * e.agreed * e.total for e in evidence),
        sum((e.weight * e.total) ** 2 for e in evidence),
    )
    return Estimate(sum(e.weight * e.agreed for e in evidence),
                    sum(e.weight * e.total for e in evidence), len(evidence), squares)  # fmt: skip


def analyse(
    champion: Estimate, challenger: Estimate, days_running: float, rules: AbRules, *,
    measure: str = "agreement",
) -> AbAnalysis:  # fmt: skip
    """Continue until the duration is over or both arms have enough decided items, then
    decide, with a two-sided z-test on the difference of the two ratios.

    Only a significantly better challenger is promoted; anything else at the end rolls
    it back, because a model that is not shown to be better is not worth the change.
    """
    enough = min(champion.items, challenger.items) >= rules.min_samples_per_arm
    if not enough and days_running < rules.duration_days:
        return AbAnalysis(
            "continue",
            f"{champion.items} / {challenger.items} items (need {rules.min_samples_per_arm} "
            f"each) after {days_running:.1f} of {rules.duration_days:.0f} days",
        )
    new, old = challenger.rate, champion.rate
    if new is None or old is None:
        return AbAnalysis("rollback", f"the experiment ended with an arm without {measure}")
    z, p = difference_z(champion, challenger)
    diff = new - old
    summary = f"{measure} {new:.1%} vs {old:.1%}, z={z:.2f}, p={p:.4f}"
    if p < rules.alpha and diff > 0:
        return AbAnalysis("promote", f"challenger better: {summary}", z, p, diff)
    return AbAnalysis("rollback", f"challenger not shown better: {summary}", z, p, diff)


def difference_z(a: Estimate, b: Estimate) -> tuple[float, float]:
    """z and two-sided p for H0: rate(a) == rate(b), the variances taken around the pooled
    rate. Both arms all-agree or all-disagree alike: (0, 1), no evidence either way."""
    if not a.total or not b.total:
        raise ValueError("both arms need something to compare")
    pooled = (a.agreed + b.agreed) / (a.total + b.total)
    se = math.sqrt(a.variance(pooled) + b.variance(pooled))
    if se == 0:
        return 0.0, 1.0
    z = (b.agreed / b.total - a.agreed / a.total) / se
    return z, math.erfc(abs(z) / math.sqrt(2))  # two-sided normal tail
