"""Rates the ML team reads: per-class precision and recall, and the audited escape rate.

Pure arithmetic over counts; the dashboard aggregates the counts in SQL.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

NOT_A_DEFECT = "normal"


@dataclass(frozen=True)
class ClassCounts:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def precision(self) -> float | None:
        flagged = self.true_positive + self.false_positive
        return self.true_positive / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        actual = self.true_positive + self.false_negative
        return self.true_positive / actual if actual else None


def per_class_counts(pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, ClassCounts]:
    """Counts per defect type from (model type, human type) pairs of judged regions.

    None on the model side is a defect the model missed (a box the human drew); None on
    the human side does not occur (a judged region always has a human type). "normal" is
    not a class: it is the absence of a defect.
    """
    return per_class_from_matrix(Counter(pairs))


def per_class_from_matrix(
    matrix: Mapping[tuple[str | None, str | None], int],
) -> dict[str, ClassCounts]:
    """per_class_counts from a confusion matrix: (model type, human type) → regions."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for (model, human), n in matrix.items():
        if model == human:
            if model is not None and model != NOT_A_DEFECT:
                tp[model] += n
            continue
        if model is not None and model != NOT_A_DEFECT:
            fp[model] += n
        if human is not None and human != NOT_A_DEFECT:
            fn[human] += n
    classes = sorted(set(tp) | set(fp) | set(fn))
    return {c: ClassCounts(tp[c], fp[c], fn[c]) for c in classes}


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion (95 % by default); None without trials.

    Wilson rather than the normal approximation: escape rates are small proportions from
    a 2 % audit sample, where p ± z·sqrt(p(1-p)/n) gives negative lower bounds and an
    interval of zero width when no escape was seen.
    """
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError("successes must lie between 0 and the number of trials")
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
