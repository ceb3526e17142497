"""When to retrain, and whether a dataset is fit to train on. Pure: numbers in, reasons out.

Defaults are the field report's triggers: 1,000 new verified samples, a disagreement rate
of 15 % or more, or any class whose precision fell below 0.70.

The classifier has a trigger of its own (`should_tune`): instruction-tune it once enough
verified crops are new since its last tuning (500) and it either names the wrong defect
type too often (more than 10 % of the regions it judged) or calls too many normal crops
defects (more than 50 in 1,000).
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


@dataclass(frozen=True)
class ClassifierTriggerRules:
    min_new_crops: int = 500
    max_error_rate: float = 0.10
    max_false_positives_per_1000: float = 50.0


@dataclass(frozen=True)
class ClassifierTriggerInput:
    """What the classifier's check saw (app.learning.tuning_trigger says how it is counted).

    judged_regions: verified model regions the classifier gave a real answer for;
    classification_errors: among them, those where it named a defect type and the human
    kept a defect of another type; normal_regions: among them, those the human called
    not a defect; false_positives: among those, the ones the classifier called a defect.
    """

    new_verified_crops: int
    judged_regions: int
    classification_errors: int
    normal_regions: int
    false_positives: int

    @property
    def error_rate(self) -> float | None:
        return self.classification_errors / self.judged_regions if self.judged_regions else None

    @property
    def false_positives_per_1000(self) -> float | None:
        if not self.normal_regions:
            return None
        return 1000 * self.false_positives / self.normal_regions


@dataclass(frozen=True)
class ClassifierTriggerDecision:
    fire: bool
    reasons: list[Problem]


def should_tune(
    data: ClassifierTriggerInput, rules: ClassifierTriggerRules
) -> ClassifierTriggerDecision:
    """Tune when enough verified crops are new AND the error rate or the false positives
    per 1,000 normal crops are above their bars (strictly; a rate with nothing to measure
    it on is above no bar).

    The reasons say why, fired or not: first the new crops (enough, or too few), then the
    bars that were crossed, or, when none was, where each measure stood against its bar.
    """
    new, needed = data.new_verified_crops, rules.min_new_crops
    enough = new >= needed
    if enough:
        text, key = f"{new} new verified crops since the last tuning", "trigger.tune_new_crops"
    else:
        text, key = f"only {new} new verified crops since the last tuning", "trigger.tune_few_crops"
    reasons = [Problem(f"{text} (trigger {needed})", key, count=new, trigger=needed)]
    measured = [_error_rate(data, rules), _false_positives(data, rules)]
    above = [problem for problem, over in measured if over]
    reasons += above or [problem for problem, _ in measured]
    return ClassifierTriggerDecision(enough and bool(above), reasons)


def _error_rate(
    data: ClassifierTriggerInput, rules: ClassifierTriggerRules
) -> tuple[Problem, bool]:
    """What the error rate says, and whether it is above its bar."""
    trigger = f"{rules.max_error_rate * 100:g}%"
    rate = data.error_rate
    if rate is None:
        text = "no judged regions in the window to measure classification errors on"
        return Problem(
            f"{text} (trigger > {trigger})", "trigger.tune_no_judged", trigger=trigger
        ), False
    over = rate > rules.max_error_rate
    params = {"rate": f"{rate:.1%}", "errors": data.classification_errors,
              "judged": data.judged_regions, "trigger": trigger}  # fmt: skip
    text = (
        f"{params['errors']} classification errors in {params['judged']} judged regions: "
        f"{params['rate']}"
    )
    if over:
        return Problem(f"{text} (trigger > {trigger})", "trigger.tune_error_rate", **params), True
    return Problem(f"{text} (within {trigger})", "trigger.tune_error_rate_within", **params), False


def _false_positives(
    data: ClassifierTriggerInput, rules: ClassifierTriggerRules
) -> tuple[Problem, bool]:
    """What the false positives per 1,000 normal crops say, and whether above their bar."""
    trigger = f"{rules.max_false_positives_per_1000:g}"
    per_1000 = data.false_positives_per_1000
    if per_1000 is None:
        text = "no normal regions in the window to count false positives in"
        return Problem(
            f"{text} (trigger > {trigger} per 1,000)", "trigger.tune_no_normal", trigger=trigger
        ), False
    over = per_1000 > rules.max_false_positives_per_1000
    params = {"per_1000": f"{per_1000:.1f}", "count": data.false_positives,
              "normal": data.normal_regions, "trigger": trigger}  # fmt: skip
    text = (
        f"{params['count']} false positives in {params['normal']} normal regions: "
        f"{params['per_1000']} per 1,000"
    )
    if over:
        return Problem(
            f"{text} (trigger > {trigger})", "trigger.tune_false_positives", **params
        ), True
    return Problem(
        f"{text} (within {trigger})", "trigger.tune_false_positives_within", **params
    ), False
