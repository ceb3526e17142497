"""When to retrain, and whether a dataset is fit to train on. Pure: numbers in, reasons out.

Defaults are the field report's triggers: 1,000 new verified samples, a disagreement rate
of 15 % or more, or any class whose precision fell below 0.70.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.policy.problems import Problem


@dataclass(frozen=True)
class TriggerRules:
    min_new_samples: int = 1000
    max_disagreement: float = 0.15
    min_class_precision: float = 0.70
    # A precision measured on a handful of regions is noise, not a reason to retrain.
    min_class_support: int = 20


@dataclass(frozen=True)
class TriggerInput:
    new_verified_samples: int
    reviewed: int  # human decisions in the window the disagreement rate is measured over
    disagreements: int
    class_precision: dict[str, float] = field(default_factory=dict)
    class_support: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerDecision:
    retrain: bool
    reasons: list[Problem]


def should_retrain(data: TriggerInput, rules: TriggerRules) -> TriggerDecision:
    """Retrain when any trigger fires; every reason that fired is listed with its numbers."""
    reasons = []
    if data.new_verified_samples >= rules.min_new_samples:
        count, needed = data.new_verified_samples, rules.min_new_samples
        reasons.append(Problem(f"{count} new verified samples (trigger {needed})",
                               "trigger.new_samples", count=count, trigger=needed))  # fmt: skip
    if data.reviewed:
        rate = data.disagreements / data.reviewed
        if rate >= rules.max_disagreement:
            shown, trigger = f"{rate:.1%}", f"{rules.max_disagreement:.0%}"
            reasons.append(Problem(
                f"disagreement {shown} of {data.reviewed} reviews (trigger {trigger})",
                "trigger.disagreement", rate=shown, reviewed=data.reviewed, trigger=trigger,
            ))  # fmt: skip
    for name, precision in sorted(data.class_precision.items()):
        support = data.class_support.get(name, 0)
        if support >= rules.min_class_support and precision < rules.min_class_precision:
            shown, trigger = f"{precision:.2f}", f"{rules.min_class_precision:.2f}"
            reasons.append(Problem(
                f"{name} precision {shown} over {support} regions (trigger < {trigger})",
                "trigger.precision", name=name, precision=shown, support=support,
                trigger=trigger,
            ))  # fmt: skip
    return TriggerDecision(bool(reasons), reasons)


@dataclass(frozen=True)
class DatasetRules:
    min_samples: int = 200
    min_per_class: int = 10


def dataset_problems(
    class_counts: dict[str, int], total_samples: int, classes: list[str], rules: DatasetRules
) -> list[Problem]:
    """Why a training snapshot must be refused; empty when it is fit to train on."""
    problems = []
    if total_samples < rules.min_samples:
        problems.append(Problem(f"only {total_samples} samples; at least {rules.min_samples} "
                                "needed", "refusal.too_few_samples", count=total_samples,
                                minimum=rules.min_samples))  # fmt: skip
    for name in classes:
        count = class_counts.get(name, 0)
        if count == 0:
            problems.append(
                Problem(f"class {name} has no examples", "refusal.class_empty", name=name)
            )
        elif count < rules.min_per_class:
            problems.append(Problem(
                f"class {name} has {count} examples; at least {rules.min_per_class} needed",
                "refusal.class_small", name=name, count=count, minimum=rules.min_per_class,
            ))  # fmt: skip
    return problems
