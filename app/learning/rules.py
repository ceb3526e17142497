"""The site's learning-loop configuration as the pure policies' rule objects."""

from __future__ import annotations

from datetime import timedelta

from app.config import Settings
from app.policy.promotion import GateRules
from app.policy.retrain import ClassifierTriggerRules, DatasetRules, TriggerRules


def trigger_rules(settings: Settings) -> TriggerRules:
    return TriggerRules(
        min_new_samples=settings.retrain_min_new_samples,
        max_disagreement=settings.retrain_max_disagreement,
        min_class_precision=settings.retrain_min_class_precision,
        min_class_support=settings.retrain_min_class_support,
    )


def tune_trigger_rules(settings: Settings) -> ClassifierTriggerRules:
    return ClassifierTriggerRules(
        min_new_crops=settings.tune_trigger_min_new_crops,
        max_error_rate=settings.tune_trigger_max_error_rate,
        max_false_positives_per_1000=settings.tune_trigger_max_false_positives_per_1000,
    )


def dataset_rules(settings: Settings) -> DatasetRules:
    return DatasetRules(
        min_samples=settings.retrain_min_samples, min_per_class=settings.retrain_min_per_class
    )


def gate_rules(settings: Settings) -> GateRules:
    return GateRules(
        minimums={"map50": settings.gate_min_map50, "precision": settings.gate_min_precision},
        max_regression=settings.gate_max_regression,
    )


def classifier_gate_rules(settings: Settings) -> GateRules:
    return GateRules(
        minimums={
            "accuracy": settings.gate_min_classifier_accuracy,
            "human_agreement": settings.gate_min_human_agreement,
        },
        max_regression=settings.gate_max_regression,
        compared=("accuracy", "human_agreement", "severity_accuracy"),
        # The regression allowance in the measure's own unit: 0.02 of the crops is 20 in 1,000.
        maximums={"false_positives_per_1000": settings.gate_max_false_positives_per_1000},
        compared_lower={"false_positives_per_1000": 1000.0 * settings.gate_max_regression},
    )


def trigger_window(settings: Settings) -> timedelta:
    return timedelta(days=settings.retrain_window_days)
